"""gunicorn configuration for a 银龄通 web node: `gunicorn -c deploy/gunicorn.conf.py`.

The same file serves every machine; what differs between them comes from the environment
(the systemd unit's EnvironmentFile):

    YINLING_BIND          where to listen (default 127.0.0.1:8000: nginx on the same host;
                          0.0.0.0:8000 or a private address when nginx runs elsewhere)
    YINLING_WEB_WORKERS   processes (default: the number of CPUs, at least 2)
    YINLING_WEB_THREADS   threads per process (default 8)
    FORWARDED_ALLOW_IPS   the proxies whose X-Forwarded-Proto is believed (default loopback)

The application's own settings (DATABASE_URL, REDIS_URL, WECHAT_*, YINLING_*) are read by
bot.settings from the same environment.
"""
import gc
import os
import re
from pathlib import Path

from gunicorn.glogging import Logger

# The checkout this file lives in: `bot` is imported from there whatever the working directory.
chdir = str(Path(__file__).resolve().parent.parent)
wsgi_app = "bot:create_app()"

bind = [os.environ.get("YINLING_BIND", "127.0.0.1:8000")]
# Threads wait on PostgreSQL, Redis and WeChat; processes use the CPUs (decryption, XML,
# templates). Each process opens at most 30 database connections (pool 10 + overflow 20):
# size PostgreSQL's max_connections for every web node, worker and scheduler together.
workers = int(os.environ.get("YINLING_WEB_WORKERS") or max(2, os.cpu_count() or 1))
threads = int(os.environ.get("YINLING_WEB_THREADS") or 8)
worker_class = "gthread"

# The webhook answers within YINLING_REPLY_BUDGET (4 s) of a request's arrival on its own and
# sends a late reply as a push. This timeout is only for a worker process that stops responding
# altogether, so it sits well above WeChat's 5 s (and a console export of a long roster).
timeout = 30
# SIGTERM / SIGHUP (a deploy): stop accepting, let requests in flight finish their few seconds.
graceful_timeout = 30
# Longer than nginx keeps an idle upstream connection (keepalive_timeout 60s in the site file):
# the proxy, not gunicorn, closes it, so nginx never sends a request on a connection gunicorn
# is closing at that moment (a POST lost that way is not retried).
keepalive = 75
# No max_requests: a recycled process would cut short the handlers that go on after the
# webhook has answered `success` (inbox_rescue would have to ask users to write again).

# Only the proxy may say the request came over HTTPS (X-Forwarded-Proto). The client's address
# (X-Forwarded-For) is the app's business: YINLING_TRUSTED_PROXIES=1 behind one nginx.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# Each process builds its own app after the fork (engine, Redis pools, threads): nothing
# opened before a fork is ever shared between processes.
preload_app = False
# The heartbeat file of each process on a memory file system: a slow disk cannot make the
# master think a worker hangs. /dev/shm is writable under the unit's ProtectSystem=strict.
worker_tmp_dir = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
proc_name = "yinling-web"

# Logs go to stdout/stderr, i.e. the journal under systemd.
accesslog = "-"
errorlog = "-"
loglevel = "info"
# No query string, no referer: WeChat's `signature`/`msg_signature`, `timestamp` and `nonce`
# (a plaintext signature covers no body: copied from a log it could sign a forged message
# within the 300 s window), the sandbox outbox's signature and a page's one-time web-login
# `code` all travel in the query; the referer repeats a page's address. The client is the
# proxy's X-Forwarded-For; %(M)s is the time taken in milliseconds.
access_log_format = ('%({x-forwarded-for}i)s via %(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s '
                     '%(M)sms "%(a)s"')

_PAGE_LINK = re.compile(r"^/m/[^/]+")


class RedactingLogger(Logger):
    """gunicorn's logger, with the token of a page link (/m/<token>) left out of access lines:
    the link itself is the key to the page (PRODUCT.md 7.6)."""

    def atoms(self, resp, req, environ, request_time):
        """The format's values, the path's page token replaced by `-`."""
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["U"] = _PAGE_LINK.sub("/m/-", atoms.get("U") or "")
        return atoms


logger_class = RedactingLogger


def post_worker_init(worker):
    """Each web process looks at this host's spool as it starts, so that messages spooled
    before a restart are replayed even when no new message reaches this host; then it takes
    its app out of the garbage collector's sight."""
    yl = getattr(worker.wsgi, "extensions", {}).get("yinling")
    if yl is not None:
        yl.inbox.replay_later(spooled=True)
    # The app's long-lived objects (compiled phrasings, mappers, templates: ~300,000 of them)
    # leave the collector's generations: a full collection then takes microseconds instead
    # of ~70 ms, a pause that would land on whichever message was being answered.
    gc.freeze()
