"""The spool on one host: `flask --app bot spool replay` drains it on demand (before
retiring the host), each message handled once and in order, its answer sent as a push."""
from __future__ import annotations

from bot.inbox import dedupe_key
from bot.wxmessage import message_xml
from tests.conftest import bound_user, inbound, sent


def spool_text(app, openid: str, words: str, msg_id: int) -> None:
    """Put a text message into the app's spool as the webhook does during an outage."""
    raw = message_xml(openid, "text", msg_id=msg_id, Content=words)
    data = {"ToUserName": "gh_test", "FromUserName": openid, "MsgType": "text",
            "Content": words, "MsgId": str(msg_id)}
    assert app.extensions["yinling"].inbox.spool.write(dedupe_key(data), data, raw)


def test_replay_drains_the_spool_in_order_once(app):
    user = bound_user(app)
    spool_text(app, user, "菜单", 90001)
    spool_text(app, user, "党费", 90002)
    result = app.test_cli_runner().invoke(args=["spool", "replay"])
    assert result.exit_code == 0, result.output
    assert "2 replayed, 0 waiting" in result.output
    assert [m.content for m in inbound(app, user)] == ["菜单", "党费"]
    pushed = sent(app, user)
    assert len(pushed) == 2 and "请回复数字选择" in pushed[0] and "缴费记录" in pushed[1]
    again = app.test_cli_runner().invoke(args=["spool", "replay"])
    assert "0 replayed, 0 waiting" in again.output          # nothing twice
    assert len(inbound(app, user)) == 2


def test_a_web_process_replays_the_spool_as_it_starts(app):
    """deploy/gunicorn.conf.py's post_worker_init: what a host spooled before a restart is
    replayed at once, though no new message reaches the host."""
    import runpy
    from types import SimpleNamespace

    from bot.settings import ROOT
    from tests.conftest import wait_for

    user = bound_user(app)
    spool_text(app, user, "菜单", 90011)
    config = runpy.run_path(str(ROOT / "deploy" / "gunicorn.conf.py"))
    config["post_worker_init"](SimpleNamespace(wsgi=app))
    spool = app.extensions["yinling"].inbox.spool
    assert wait_for(lambda: not spool.pending() and len(sent(app, user)) == 1, 10)
    assert "请回复数字选择" in sent(app, user)[0]


def test_files_vanishing_while_another_process_writes_are_no_error(tmp_path, monkeypatch):
    """Two gunicorn workers share the host's spool: a temporary file listed by one may be
    renamed by the other before it is looked at. It once failed the write (and held the
    answer past WeChat's 5 s: tests/test_faults_gunicorn.py caught it)."""
    from pathlib import Path

    from bot.spool import CLAIMED, SUFFIX, Spool

    spool = Spool(tmp_path / "spool", 100, 10 ** 6)
    assert spool.write("msg:1", {"FromUserName": "a"}, "<xml>1</xml>")
    gone = [spool.folder / "00000000000000000001-0000-0000.tmp",   # renamed meanwhile
            spool.folder / f"00000000000000000002-0000-0000{SUFFIX}{CLAIMED}"]   # replayed
    listed = Path.iterdir
    monkeypatch.setattr(Path, "iterdir", lambda self: [*listed(self), *gone])
    assert spool.write("msg:2", {"FromUserName": "a"}, "<xml>2</xml>")
    assert spool.reclaim_stale(0) == 0
    monkeypatch.undo()
    assert len(spool.pending()) == 2
