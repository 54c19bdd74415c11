"""Real processes: gunicorn with two workers, and the chat simulator over HTTP."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import create_engine, func, select
from werkzeug.serving import make_server

from bot.settings import ROOT
from bot.wxmessage import message_xml, read_reply, sign_request
from models import Delivery, InboundMessage

GUNICORN = os.path.join(os.path.dirname(sys.executable), "gunicorn")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def gunicorn(backend):
    """Two gunicorn workers on one database (and one Redis when a real one is configured)."""
    url, redis_client = backend
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "YINLING_ENV": "test", "PYTHONPATH": str(ROOT)}
    env.pop("REDIS_URL", None)
    if "postgresql" in url:
        env["REDIS_URL"] = os.environ["TEST_REDIS_URL"]
    proc = subprocess.Popen([GUNICORN, "--workers", "2", "--threads", "4", "--bind",
                             f"127.0.0.1:{port}", "tests.echo:create()"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/wechat"
    try:
        wait_until_up(base)
        yield base, url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def wait_until_up(base: str) -> None:
    """Poll until the server answers, or fail the test after 30 s."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(base, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.2)
    pytest.fail(f"gunicorn did not answer at {base} within 30 s")


def test_concurrent_copies_at_two_gunicorn_workers_are_handled_once(gunicorn):
    base, url = gunicorn
    openid = f"g-{time.time_ns()}"
    xml = message_xml(openid, "text", Content="计数 g")
    req = sign_request(xml, "yinling-dev-token")

    def send(_):
        with requests.Session() as http:  # separate connections, so both workers get copies
            r = http.post(base, params=req.query, data=req.body.encode(), timeout=10)
            return r.status_code, r.text

    for attempt in range(3):  # three rounds of three copies: each round is one message
        with ThreadPoolExecutor(3) as pool:
            results = list(pool.map(send, range(3)))
        assert all(status == 200 for status, _ in results)
        contents = {(read_reply(body, "yinling-dev-token") or {}).get("Content")
                    for _, body in results}
        assert contents <= {"计数:g", None} and "计数:g" in contents
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(InboundMessage)
                            .where(InboundMessage.openid == openid)).scalar() == 1
        assert conn.execute(select(func.count()).select_from(Delivery)
                            .where(Delivery.openid == openid)).scalar() == 1
    engine.dispose()


@pytest.fixture
def served(make_app):
    """The echo app served over real HTTP on loopback."""
    from tests import echo

    app = make_app()
    echo.install(app)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield app, f"http://127.0.0.1:{server.server_port}/wechat"
    server.shutdown()


def test_chat_simulator_shows_replies_and_pushes(served):
    app, url = served
    runner = app.test_cli_runner()
    result = runner.invoke(args=["chat", "--openid", "sim-1", "--url", url],
                           input="菜单\n计数 z\n[语音]菜单\n退出程序\n")
    assert result.exit_code == 0, result.output
    assert result.output.count("请回复数字选择") >= 2
    assert "银龄通> 计数:z" in result.output
    assert "[推送] 推送:z" in result.output


def test_chat_simulator_in_safe_mode(make_app):
    from tests import echo

    key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
    app = make_app(wechat_aes_key=key, wechat_appid="wxabc", wechat_secret="s")
    echo.install(app)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = app.test_cli_runner().invoke(
            args=["chat", "--openid", "sim-2", "--url",
                  f"http://127.0.0.1:{server.server_port}/wechat"], input="回声 加密你好\n")
    finally:
        server.shutdown()
    assert "银龄通> 加密你好" in result.output


def test_sandbox_outbox_endpoint_needs_a_signature(client):
    assert client.get("/wechat/sandbox/outbox?openid=x").status_code == 403


def _outbox_query(openid="x", after="0", ts=None, signed_openid=None, nonce="n1"):
    from bot.webhook import outbox_signature

    ts = str(int(time.time())) if ts is None else ts
    sig = outbox_signature("yinling-dev-token", ts, nonce, signed_openid or openid)
    return {"openid": openid, "after": after, "timestamp": ts, "nonce": nonce, "signature": sig}


def test_sandbox_outbox_signature_covers_the_openid_and_is_fresh(client):
    from bot import wxcrypto

    assert client.get("/wechat/sandbox/outbox", query_string=_outbox_query()).status_code == 200
    # a webhook signature copied from an old access-log line is not enough
    ts = str(int(time.time()))
    old = {"openid": "x", "timestamp": ts, "nonce": "n1",
           "signature": wxcrypto.sign("yinling-dev-token", ts, "n1")}
    assert client.get("/wechat/sandbox/outbox", query_string=old).status_code == 403
    other = _outbox_query(openid="someone-else", signed_openid="x")
    assert client.get("/wechat/sandbox/outbox", query_string=other).status_code == 403
    stale = _outbox_query(ts=str(int(time.time()) - 301))
    assert client.get("/wechat/sandbox/outbox", query_string=stale).status_code == 403


@pytest.mark.parametrize("query", [{"after": "abc"}, {"after": "-1"}, {"openid": ""},
                                   {"openid": "x" * 65}])
def test_sandbox_outbox_bad_parameters_are_400(client, query):
    params = _outbox_query(**query)
    assert client.get("/wechat/sandbox/outbox", query_string=params).status_code == 400


def test_sandbox_outbox_is_not_served_in_production(make_app):
    app = make_app(env="production", allow_dev_defaults=True)
    resp = app.test_client().get("/wechat/sandbox/outbox", query_string=_outbox_query())
    assert resp.status_code == 404
