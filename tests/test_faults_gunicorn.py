"""Faults through real web processes (issue 13): gunicorn with two workers, PostgreSQL behind
the tests' TCP proxy, a private redis-server, users chatting over HTTP from several threads.

A three-second database outage in the middle of people's reports loses nothing: every answer
comes within WeChat's 5 s, the messages the database could not take are spooled by whichever
worker got them and replayed once, in order per user, when it is back. A frozen Redis holds no
answer past WeChat's wait either.
"""
from __future__ import annotations

import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import make_url

from bot.settings import ROOT
from models import InboundMessage
from models.issues import Ticket
from tests.conftest import TEST_DATABASE_URL, bound_user, wait_for
from tests.faults import Proxy, RedisServer
from tests.test_processes import GUNICORN, free_port, wait_until_up
from tests.test_two_machines import Machine
from tests.wx import WeChat

pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)

WECHAT_WAIT = 5.0
REPORT = [("反映问题", "哪方面的问题"), ("1", "遇到了什么问题"),
          ("暖气一直不热，家里很冷", "急不急"), ("1", "请核对"), ("1", "问题编号是")]
AFTER = [("菜单", "请回复数字选择"), ("党费", "缴费记录")]   # said after the database is back
USERS = 4


@pytest.fixture
def served(backend, make_app, tmp_path):
    """(gunicorn's builder, the proxy in front of PostgreSQL, the private Redis, a direct
    engine, the in-process app that reads the same database)."""
    database, _ = backend
    url = make_url(database)
    proxy = Proxy((url.host or "127.0.0.1", url.port or 5432))
    redis_server = RedisServer()
    app = make_app()
    through = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": through,
           "REDIS_URL": redis_server.url, "YINLING_ENV": "test", "QUIET_HOURS": "off",
           "WECHAT_API_BASE": "http://127.0.0.1:9/",
           "YINLING_SPOOL_DIR": str(tmp_path / "spool")}
    log = open(tmp_path / "gunicorn.log", "wb")
    proc = subprocess.Popen([GUNICORN, "--workers", "2", "--threads", "4", "--bind",
                             f"127.0.0.1:{port}", "bot:create_app()"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    direct = create_engine(TEST_DATABASE_URL)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/wechat")
        wx = WeChat(app)
        wx.client = Machine(port)
        yield wx, proxy, redis_server, direct, app
    finally:
        print("gunicorn log:", tmp_path / "gunicorn.log")
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        proxy.cut()
        redis_server.stop()
        direct.dispose()


def report(wx, openid: str, pause: float = 0.0) -> list[tuple[str, str | None, float]]:
    """One user's whole report over HTTP, `pause` seconds between answers (people read):
    (said, reply, seconds) per step."""
    answers = []
    for said, _ in REPORT + AFTER:
        started = time.monotonic()
        reply = wx.text(openid, said)
        answers.append((said, reply, time.monotonic() - started))
        time.sleep(pause)
    return answers


def test_a_database_outage_under_gunicorn_loses_nothing(served):
    """Four users report at once, a message every 0.7 s; the database is away for 3 s in the
    middle: messages go to either worker, before, during and after the outage, and what a
    user says after it is handled after what was spooled."""
    wx, proxy, _, direct, app = served
    users = [bound_user(app, name=f"王{i}同", phone=f"1380000{i:04d}") for i in range(USERS)]
    with ThreadPoolExecutor(USERS) as pool:
        running = [pool.submit(report, wx, u, 0.7) for u in users]
        time.sleep(0.4)
        proxy.cut()
        time.sleep(3.0)
        proxy.restore()
        answered = [f.result() for f in running]
    slowest = max(seconds for steps in answered for _, _, seconds in steps)
    assert slowest < WECHAT_WAIT, answered
    spooled = sum("稍后答复" in (reply or "") for steps in answered for _, reply, _ in steps)
    assert spooled >= USERS, "the outage should have sent messages of everyone to the spool"

    def settled() -> bool:
        with direct.connect() as conn:
            statuses = conn.execute(select(InboundMessage.status).where(
                InboundMessage.openid.in_(users))).scalars().all()
        return len(statuses) == USERS * len(REPORT + AFTER) and "processing" not in statuses

    assert wait_for(settled, 30, every=0.2), "the spool was not replayed"
    with direct.connect() as conn:
        for user in users:   # each message once, in the order it was said
            said = conn.execute(select(InboundMessage.content).where(
                InboundMessage.openid == user).order_by(InboundMessage.id)).scalars().all()
            assert said == [s for s, _ in REPORT + AFTER], (user, said)
        tickets = conn.execute(select(Ticket.reporter_openid, func.count()).group_by(
            Ticket.reporter_openid)).all()
    assert dict(tickets) == dict.fromkeys(users, 1)
    print(f"{spooled} of {USERS * len(REPORT + AFTER)} answers said 稍后答复; slowest answer "
          f"{slowest:.2f} s")


def test_a_frozen_redis_under_gunicorn_holds_no_answer(served):
    wx, _, redis_server, _, app = served
    user = bound_user(app)
    assert "请回复数字选择" in wx.text(user, "菜单")
    redis_server.freeze()
    try:
        answers = report(wx, user)
    finally:
        redis_server.thaw()
    for (said, reply, seconds), (_, asked) in zip(answers, REPORT):
        assert asked in (reply or ""), (said, reply)
        assert seconds < 4.5, (said, seconds)
