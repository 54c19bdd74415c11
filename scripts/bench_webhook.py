"""Webhook benchmark: this product beside a bare Flask + wechatpy echo and WeRoBot, in one run.

    .venv/bin/python scripts/bench_webhook.py                     # both mixes, 3 rounds x 10 s
    .venv/bin/python scripts/bench_webhook.py --mix hello --seconds 3 --rounds 1
    .venv/bin/python scripts/bench_webhook.py --rate 50           # fixed 50 req/s: p50, p99
    .venv/bin/python scripts/bench_webhook.py --database-url \\
        postgresql+psycopg2://postgres@127.0.0.1:5432/bench --redis-url redis://127.0.0.1:6379/11

Four servers, each gunicorn with 2 workers (x 4 threads; WeRoBot with its session 1 thread, as
its SQLite session is not thread-safe) on a free port, all in safe mode (AES):
  yinling          this product, `bot:create_app()` with deploy/gunicorn.conf.py (its hooks and
                   access log, as deployed), sandbox (nothing reaches WeChat), on
                   PostgreSQL (database `bench`, created if missing) and Redis (db 11);
  flask echo       scripts/echo_flask.py: wechatpy decrypts, answers the content, encrypted;
  werobot echo     scripts/echo_werobot.py, sessions off;
  werobot session  the same with WeRoBot's default SQLite session, read and written per message.
Every server gets the same signed, encrypted messages (bot/wxmessage.py), each with a fresh MsgId,
nonce and timestamp, built before each round so that the client spends little CPU: 8 keep-alive
connections, one thread each, send back to back for --seconds; rounds alternate between the
servers (after a 1 s warm-up each) and the table shows the medians over the rounds of req/s, p50
and p99, the servers' own CPU per request (gunicorn master + workers; not PostgreSQL's), this
client's CPU (% of one core) and the replies that were not the expected ones (a benchmark of
errors is worthless: every reply is decrypted and checked after its round).

Mixes: `hello` is `你好` from a new user every message, answered with the menu; `realistic` has
200 bound cadres (with fee items and sent template messages) each going round `你好`, `3` (the menu
pick for 党费), `党费`, `反映问题`, `1` (a dialog step), `取消`, and two `TEMPLATESENDJOBFINISH`
callbacks; a user's messages go in order over one connection. The peers echo the same messages.
With --rate the servers are driven open-loop at that many requests a second (latency counted from
the moment a request was due) and the table shows p50 and p99 (target for this product: p99 < 10 ms).

Targets (issue 9): product req/s >= 0.5 x WeRoBot echo and >= 2 x WeRoBot with its session.
The benchmark database's schema is DROPPED and migrated afresh, and the Redis db is flushed:
point them at scratch ones. The flood run (20,000 callbacks at 170/s while 20 users chat) and
the growth run (after 1,000,000 inbound messages and 100,000 tickets) are scripts/bench_load.py.
Server logs go to the temporary folder printed first (kept when a reply was wrong).
"""
from __future__ import annotations

import argparse
import itertools
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.wxmessage import message_xml, read_reply, sign_request  # noqa: E402

BIN = Path(sys.executable).parent
TOKEN = "yinlingbench2026"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APPID = "wxbench0000000001"
CADRES = 200
DELIVERIES_PER_CADRE = 100
MENU = "请回复数字选择"
FEES = "缴费情况"
# One cadre's round of the realistic mix: (what is sent, what the product's reply contains).
REALISTIC = [("你好", MENU), ("3", FEES), ("党费", FEES), ("反映问题", "请问是哪方面的问题"),
             ("1", "请说说遇到了什么问题"), ("取消", "已取消"), ("callback", None),
             ("callback", None)]
FIRST_STEPS = (0, 2, 3, 6, 7)   # where a user's round may begin: `3`, `1`, `取消` follow others


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mix", choices=("hello", "realistic", "both"), default="both")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of one round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per server (median shown)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rate", type=float, default=0.0,
                        help="requests/s, open loop (default: as fast as answered)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per server")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker")
    parser.add_argument("--servers", default="flask,werobot,session,yinling",
                        help="comma-separated subset of flask,werobot,session,yinling")
    parser.add_argument("--database-url", default=os.environ.get(
        "BENCH_DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/bench"))
    parser.add_argument("--redis-url", default=os.environ.get(
        "BENCH_REDIS_URL", "redis://127.0.0.1:6379/11"))
    return parser.parse_args()


# ---- servers -----------------------------------------------------------------------------
@dataclass
class Server:
    """One gunicorn serving one app."""

    key: str
    title: str
    app: str
    env: dict
    threads: int = 0       # gunicorn threads per worker (0: --threads)
    port: int = 0
    proc: subprocess.Popen | None = None
    wrong_warmup: int = 0
    sent: int = 0          # requests answered, warm-ups included
    callbacks: set = field(default_factory=set)   # template msgids called back
    rounds: dict = field(default_factory=dict)   # mix -> [Round]

    @property
    def product(self) -> bool:
        return self.key == "yinling"

    def start(self, args, logdir: Path) -> None:
        """Start gunicorn; return once it answers HTTP."""
        self.port = free_port()
        log = open(logdir / f"{self.key}.log", "ab")
        # The product as deployed (deploy/gunicorn.conf.py: its hooks, its access log), with
        # the same processes, threads and port as its peers.
        config = ["-c", str(ROOT / "deploy" / "gunicorn.conf.py")] if self.product else []
        self.proc = subprocess.Popen(
            [str(BIN / "gunicorn"), *config, "--workers", str(args.workers), "--threads",
             str(self.threads or args.threads), "--bind", f"127.0.0.1:{self.port}", self.app],
            cwd=ROOT, env=self.env, stdout=log, stderr=log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.title} did not start: see {log.name}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"GET /wechat HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if s.recv(64).startswith(b"HTTP/1."):
                        return
            except OSError:
                time.sleep(0.2)
        raise SystemExit(f"{self.title} did not answer within 60 s: see {log.name}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def cpu_seconds(self) -> float:
        """User + system CPU of the gunicorn master and its workers so far."""
        pids = [self.proc.pid]
        try:
            for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
                pids += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            pass
        ticks = 0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])
            except (OSError, IndexError, ValueError):
                pass
        return ticks / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_servers(args, tmp: Path) -> list[Server]:
    """The four servers (or the chosen ones), in the order rounds start with."""
    base = {**os.environ, "PYTHONPATH": str(ROOT), "WECHAT_TOKEN": TOKEN,
            "WECHAT_AES_KEY": AES_KEY, "WECHAT_APPID": APPID}
    product_env = {**base, "YINLING_ENV": "development", "WECHAT_SECRET": "",
                   "DATABASE_URL": args.database_url, "REDIS_URL": args.redis_url,
                   "QUIET_HOURS": "off", "WECHAT_API_BASE": "http://127.0.0.1:9/",
                   "YINLING_SPOOL_DIR": str(tmp / "spool")}
    session_env = {**base, "WEROBOT_SESSION_FILE": str(tmp / "werobot_session.sqlite3")}
    servers = [Server("flask", "flask + wechatpy echo", "scripts.echo_flask:create()", base),
               Server("werobot", "werobot echo", "scripts.echo_werobot:create()", base),
               # WeRoBot's SQLiteStorage shares one connection between threads: with several
               # threads a worker fails most writes ("database is locked"), so one per worker.
               Server("session", "werobot + sqlite session", "scripts.echo_werobot:create(True)",
                      session_env, threads=1),
               Server("yinling", "yinling (this product)", "bot:create_app()", product_env)]
    chosen = set(args.servers.split(","))
    return [s for s in servers if s.key in chosen]


# ---- the product's database --------------------------------------------------------------
def prepare_database(args) -> None:
    """Create the database if missing, drop its schema, migrate it as `flask db upgrade` does,
    and seed the realistic mix's cadres; flush the Redis db."""
    import redis
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(args.database_url)
    if url.get_backend_name() != "postgresql":
        raise SystemExit("--database-url must be PostgreSQL")
    created = subprocess.run(
        ["createdb", "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432), "-U",
         url.username or "postgres", url.database], capture_output=True, text=True)
    if created.returncode and "already exists" not in created.stderr:
        raise SystemExit(f"createdb failed: {created.stderr.strip()}")
    engine = create_engine(args.database_url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    env = {**os.environ, "DATABASE_URL": args.database_url, "YINLING_ENV": "development"}
    migrated = subprocess.run([str(BIN / "flask"), "--app", "bot", "db", "upgrade"], cwd=ROOT,
                              env=env, capture_output=True, text=True)
    if migrated.returncode:
        raise SystemExit(f"flask db upgrade failed:\n{migrated.stderr[-2000:]}")
    seed(args.database_url)
    redis.Redis.from_url(args.redis_url).flushdb()


def cadre_openid(i: int) -> str:
    return f"bench-cadre-{i:04d}"


def callback_msgid(cadre: int, n: int) -> int:
    """WeChat's msgid of the n-th template message sent to a cadre (cycled)."""
    return 7_000_000_000 + cadre * DELIVERIES_PER_CADRE + n % DELIVERIES_PER_CADRE


def seed(database_url: str) -> None:
    """200 cadres bound as themselves, each with this and last month's 党费 (unpaid, paid)
    and 100 template messages WeChat accepted (for the TEMPLATESENDJOBFINISH callbacks)."""
    from sqlalchemy import create_engine, insert, select
    from sqlalchemy.orm import Session

    from models import Binding, Cadre, Delivery, Follower, utcnow
    from models.fees import FeeItem

    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    period = today.strftime("%Y-%m")
    previous = (today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    engine = create_engine(database_url)
    now = utcnow()
    with Session(engine) as session, session.begin():
        session.execute(insert(Cadre), [
            {"name": f"测试{i:03d}", "phone": f"139{i:08d}", "branch": f"第{i % 5 + 1}党支部"}
            for i in range(CADRES)])
        ids = dict(session.execute(select(Cadre.phone, Cadre.id)).all())
        cadre_ids = [ids[f"139{i:08d}"] for i in range(CADRES)]
        session.execute(insert(Follower), [
            {"openid": cadre_openid(i), "subscribed": True} for i in range(CADRES)])
        session.execute(insert(Binding), [
            {"openid": cadre_openid(i), "cadre_id": cid, "relation": "self"}
            for i, cid in enumerate(cadre_ids)])
        session.execute(insert(FeeItem), [
            {"cadre_id": cid, "fee_type": "党费", "period": p, "amount_fen": 5000,
             "paid": p == previous, "paid_on": today.replace(day=1) if p == previous else None,
             "paid_source": "import" if p == previous else None}
            for cid in cadre_ids for p in (period, previous)])
        session.execute(insert(Delivery), [
            {"campaign": f"bench-{n}", "openid": cadre_openid(i), "template": "core/raw",
             "body": "银龄通性能测试", "kind": "bulk", "status": "sent", "sent_at": now,
             "wx_msg_id": str(callback_msgid(i, n))}
            for i in range(CADRES) for n in range(DELIVERIES_PER_CADRE)])
    engine.dispose()


def product_counts(database_url: str) -> tuple[int, int]:
    """(inbound messages recorded, template receipts stored) in the product's database."""
    from sqlalchemy import create_engine, func, select

    from models import Delivery, InboundMessage

    engine = create_engine(database_url)
    with engine.connect() as conn:
        inbound = conn.scalar(select(func.count()).select_from(InboundMessage))
        receipts = conn.scalar(select(func.count()).select_from(Delivery)
                               .where(Delivery.receipt.is_not(None)))
    engine.dispose()
    return inbound, receipts


# ---- messages ----------------------------------------------------------------------------
_nonces = itertools.count(1)
_msgids = itertools.count(int(time.time() * 1000) % 10**11 * 10_000)
RUN = f"{random.randrange(36**4):04x}"


@dataclass
class Item:
    """One request ready to send, and what its reply must be."""

    raw: bytes
    sent: str | None       # the text sent (None for an event)
    expect: str | None     # the product: text its reply contains; None: `success`
    msgid: int | None = None   # a callback's template msgid


class Lane:
    """One connection's sequence of messages; a user's messages all go over one lane, in order."""

    def __init__(self, mix: str, index: int, lanes: int):
        self.mix, self.index = mix, index
        self.users = [c for c in range(CADRES) if c % lanes == index]
        self.pos = 0          # messages sent so far (they advance the users' dialogs)
        self.callbacks = dict.fromkeys(self.users, 0)   # per cadre

    def message(self, i: int) -> tuple[str, str, dict, str | None, str | None]:
        """(openid, msg_type, fields, text sent, product's expected reply) of message i."""
        if self.mix == "hello":
            return f"bench-{RUN}-{self.index}-{i}", "text", {"Content": "你好"}, "你好", MENU
        # Users start at different steps (ones that need no earlier step), so that any stretch
        # of messages has most of the mix.
        slot, turn = i % len(self.users), i // len(self.users)
        cadre = self.users[slot]
        said, expect = REALISTIC[(turn + FIRST_STEPS[slot % len(FIRST_STEPS)]) % len(REALISTIC)]
        if said == "callback":
            self.callbacks[cadre] += 1
            return cadre_openid(cadre), "event", {
                "Event": "TEMPLATESENDJOBFINISH", "MsgID": callback_msgid(
                    cadre, self.callbacks[cadre]), "Status": "success"}, None, None
        return cadre_openid(cadre), "text", {"Content": said}, said, expect

    def build(self, port: int, start: int, count: int) -> list[Item]:
        """Messages start .. start+count, signed and encrypted now, as raw HTTP requests."""
        items = []
        for i in range(start, start + count):
            openid, msg_type, fields, said, expect = self.message(i)
            xml = message_xml(openid, msg_type, to="gh_bench", msg_id=next(_msgids), **fields)
            req = sign_request(xml, TOKEN, aes_key=AES_KEY, appid=APPID,
                               nonce=f"{RUN}{next(_nonces)}")
            body = req.body.encode()
            head = (f"POST /wechat?{urlencode(req.query)} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                    f"Content-Type: text/xml\r\nContent-Length: {len(body)}\r\n\r\n").encode()
            items.append(Item(head + body, said, expect, fields.get("MsgID")))
        return items


# ---- the client --------------------------------------------------------------------------
class Conn:
    """A minimal HTTP/1.1 keep-alive client: sends pre-built bytes, reads one response."""

    def __init__(self, port: int):
        self.port, self.sock, self.used = port, None, False

    def request(self, raw: bytes) -> tuple[int, bytes]:
        for attempt in (0, 1):
            if self.sock is None:
                self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.used = False
            try:
                self.sock.sendall(raw)
                result = self._read()
                self.used = True
                return result
            except (ConnectionError, EOFError):
                reused, self.used = self.used, False
                self.close()
                if attempt or not reused:   # only a reused idle connection may be retried
                    raise
        raise AssertionError("unreachable")

    def _read(self) -> tuple[int, bytes]:
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip().lower()
        if b"content-length" in headers:
            length = int(headers[b"content-length"])
            while len(body) < length:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise EOFError("connection closed mid-body")
                body += chunk
        elif headers.get(b"transfer-encoding") == b"chunked":
            body = self._chunked(body)
        if headers.get(b"connection") == b"close":
            self.close()
        return status, body

    def _chunked(self, buf: bytes) -> bytes:
        out = b""
        while True:
            while b"\r\n" not in buf:
                buf += self.sock.recv(65536)
            size_line, _, buf = buf.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(buf) < size + 2:
                buf += self.sock.recv(65536)
            out, buf = out + buf[:size], buf[size + 2:]
            if size == 0:
                return out

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


@dataclass
class Round:
    """What one round against one server measured."""

    sent: int
    seconds: float
    latencies: list
    wrong: int
    errors: int
    cpu: float             # the server's CPU seconds
    client_cpu: float      # this process's CPU seconds

    @property
    def rps(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def run_round(server: Server, lanes: list[Lane], seconds: float, rate: float,
              estimate: float) -> Round:
    """Drive the server from every lane for `seconds`; check the replies afterwards."""
    per_lane = int(estimate * seconds * 1.4 / len(lanes)) + 50
    batches = [lane.build(server.port, lane.pos, per_lane) for lane in lanes]
    results: list[list] = [[] for _ in lanes]
    errors = [0] * len(lanes)
    tickets = itertools.count()
    go = threading.Barrier(len(lanes) + 1)
    start_box: list[float] = []

    def drive(k: int) -> None:
        lane, items, out, conn = lanes[k], batches[k], results[k], Conn(server.port)
        go.wait()
        t0 = start_box[0]
        deadline = t0 + seconds
        n = 0
        while True:
            if rate:
                due = t0 + next(tickets) / rate
                if due >= deadline:
                    break
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            else:
                due = time.perf_counter()
                if due >= deadline:
                    break
            if n == len(items):   # ran out: build more (costs the client; rare)
                items.extend(lane.build(server.port, lane.pos + n, per_lane // 2 + 10))
            item = items[n]
            try:
                status, body = conn.request(item.raw)
            except (OSError, EOFError):
                errors[k] += 1
                conn.close()
                status, body = 0, b""
            out.append((item, status, body, time.perf_counter() - due))
            n += 1
        conn.close()

    threads = [threading.Thread(target=drive, args=(k,)) for k in range(len(lanes))]
    for t in threads:
        t.start()
    cpu0, client0 = server.cpu_seconds(), time.process_time()
    start_box.append(time.perf_counter())
    go.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start_box[0]
    cpu, client = server.cpu_seconds() - cpu0, time.process_time() - client0
    for lane, out in zip(lanes, results):
        lane.pos += len(out)
    done = [r for out in results for r in out]
    server.sent += len(done)
    server.callbacks.update(item.msgid for item, *_ in done if item.msgid is not None)
    wrong = sum(not reply_ok(server, item, status, body) for item, status, body, _ in done)
    return Round(len(done), elapsed, [r[3] for r in done], wrong, sum(errors), cpu, client)


def reply_ok(server: Server, item: Item, status: int, body: bytes) -> bool:
    """Whether the server answered what it should: the product its reply, the peers the echo."""
    if status != 200:
        return False
    try:
        data = read_reply(body.decode(), TOKEN, aes_key=AES_KEY, appid=APPID)
    except Exception:  # noqa: BLE001 - an undecodable reply is a wrong one
        return False
    content = None if data is None else data.get("Content")
    if server.product:
        return content is None if item.expect is None else item.expect in (content or "")
    return content == item.sent


# ---- the run -----------------------------------------------------------------------------
def bench_mix(args, mix: str, servers: list[Server]) -> None:
    """Warm up, then alternate rounds between the servers; print the table."""
    lanes = {s.key: [Lane(mix, k, args.connections) for k in range(args.connections)]
             for s in servers}
    estimate = {}
    for server in servers:   # warm-up: loads the code paths, estimates how much to pre-build
        warm = run_round(server, lanes[server.key], 1.0, args.rate, args.rate or 500.0)
        estimate[server.key] = args.rate or max(warm.rps, 50.0)
        server.wrong_warmup += warm.wrong
        server.rounds[mix] = []
    for r in range(args.rounds):
        order = servers[r % len(servers):] + servers[:r % len(servers)]
        for server in order:
            result = run_round(server, lanes[server.key], args.seconds, args.rate,
                               estimate[server.key])
            estimate[server.key] = args.rate or max(result.rps, 50.0)
            server.rounds[mix].append(result)
            print(f"  {mix:9} round {r + 1} {server.title:26} {result.rps:8.1f} req/s  "
                  f"p99 {result.pct(0.99):6.1f} ms  wrong {result.wrong}", flush=True)
    report(args, mix, servers)


def report(args, mix: str, servers: list[Server]) -> None:
    """The table for one mix, and the ratios against the peers."""
    what = f"open loop at {args.rate:g} req/s" if args.rate else "closed loop"
    print(f"\nmix {mix}: {args.rounds} rounds x {args.seconds:g} s per server, "
          f"{args.connections} connections, {what}; medians of the rounds")
    print(f"{'server':27} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'cpu ms/req':>10} "
          f"{'client %':>8} {'wrong':>6}  rounds req/s")
    figures = {}
    for s in servers:
        rounds = s.rounds[mix]
        rps = statistics.median(r.rps for r in rounds)
        p50 = statistics.median(r.pct(0.50) for r in rounds)
        p99 = statistics.median(r.pct(0.99) for r in rounds)
        sent = sum(r.sent for r in rounds)
        cpu = sum(r.cpu for r in rounds) / sent * 1000 if sent else float("nan")
        client = sum(r.client_cpu for r in rounds) / sum(r.seconds for r in rounds) * 100
        wrong = sum(r.wrong for r in rounds)
        errors = sum(r.errors for r in rounds)
        figures[s.key] = (rps, p99)
        print(f"{s.title:27} {rps:8.1f} {p50:7.1f} {p99:7.1f} {cpu:10.2f} {client:8.0f} "
              f"{wrong:6d}  {' '.join(f'{r.rps:.0f}' for r in rounds)}"
              + (f"  ({errors} connection errors)" if errors else "")
              + (f"  ({s.wrong_warmup} wrong in warm-ups)" if s.wrong_warmup else ""))
    if "yinling" not in figures:
        return
    rps, p99 = figures["yinling"]
    if args.rate:
        print(f"product p99 at {args.rate:g} req/s: {p99:.1f} ms (target < 10 ms: "
              f"{'met' if p99 < 10 else 'NOT met'})"
              + (f"; WeRoBot echo's {figures['werobot'][1]:.1f} ms" if "werobot" in figures
                 else ""))
        return
    for key, label, target in (("werobot", "WeRoBot echo", 0.5),
                               ("session", "WeRoBot with session", 2.0)):
        if key in figures and figures[key][0]:
            ratio = rps / figures[key][0]
            print(f"product / {label:21} {ratio:6.2f}  (target >= {target:g}: "
                  f"{'met' if ratio >= target else 'NOT met'})")


def main() -> int:
    """Start the servers, run the chosen mixes, print the figures; 1 if a reply was wrong."""
    args = parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_webhook_"))
    servers = make_servers(args, tmp)
    print(f"server logs in {tmp} (removed after a run without wrong replies); gunicorn {args.workers} workers x {args.threads} "
          f"threads per server; {os.cpu_count()} CPUs", flush=True)
    if any(s.product for s in servers):
        prepare_database(args)
    try:
        for server in servers:
            server.start(args, tmp)
        mixes = ("hello", "realistic") if args.mix == "both" else (args.mix,)
        for mix in mixes:
            bench_mix(args, mix, servers)
        product = next((s for s in servers if s.product), None)
        if product:
            inbound, receipts = product_counts(args.database_url)
            print(f"product database: {inbound} inbound messages recorded of {product.sent} "
                  f"sent; template receipts stored for {receipts} of the "
                  f"{len(product.callbacks)} msgids called back")
    finally:
        for server in servers:
            server.stop()
    wrong = sum(r.wrong for s in servers for rounds in s.rounds.values() for r in rounds)
    if wrong == 0:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
