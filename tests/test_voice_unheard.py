"""Voice WeChat could not recognise reaches a person (issue 11, item 6): through the real
webhook the recording opens (or joins) a 人工 request, on-duty staff are told a recording waits
in the console, the recording is downloaded and kept by bot/media.py like a ticket's, and the
console plays it to logged-in staff only; what could not be kept is said honestly."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from models.issues import TicketAttachment
from models.people import HelpRequest
from tests.conftest import bound_user, console_staff, db, logged_in, page, sent, wait_for
from tests.test_media import AMR, FFMPEG, STORED_NAME, media_dir
from tests.wx import WeChat


@pytest.fixture
def staff(live) -> str:
    """赵敏, on duty in chat, with a console password; her openid."""
    return console_staff(live)


@pytest.fixture
def wx(live):
    """WeChat's servers posting to the live app (which downloads from the fake)."""
    return WeChat(live)


def requests_of(app, openid: str) -> list[HelpRequest]:
    """The user's 人工 requests, oldest first, read fresh."""
    with db(app) as s:
        rows = list(s.scalars(select(HelpRequest).where(HelpRequest.openid == openid)
                              .order_by(HelpRequest.id)))
        s.expunge_all()
    return rows


def recordings(app, number: int) -> list[TicketAttachment]:
    """The kept recordings of 人工 request `number`, oldest first, read fresh."""
    with db(app) as s:
        rows = list(s.scalars(select(TicketAttachment).where(
            TicketAttachment.help_request_id == number).order_by(TicketAttachment.id)))
        s.expunge_all()
    return rows


def settled(app, number: int, *statuses: str, seconds: float = 10.0) -> list:
    """Wait until the request's recordings have these statuses, in order; them."""
    found = wait_for(lambda: (rows := recordings(app, number)) and
                     tuple(r.status for r in rows) == statuses and rows, seconds)
    assert found, [(r.status, r.error, r.attempts) for r in recordings(app, number)]
    return found


def player(number: int, attachment_id: int) -> str:
    """What the console shows for a saved recording (a player; a download without ffmpeg)."""
    src = f"/console/help/{number}/media/{attachment_id}"
    return f'<audio controls preload="metadata" src="{src}">' if FFMPEG else \
        f'<a href="{src}" download>'


def test_an_unrecognised_voice_reaches_staff_as_a_recording_they_can_play(
        live, fake, wx, staff):
    fake.add_media("VOICE-U1", AMR, "audio/amr")
    cadre = bound_user(live)
    reply = wx.voice(cadre, None, "VOICE-U1")
    assert "没听清" in reply and "工作人员" in reply and "听了会回复您" in reply
    assert "请回复数字选择" not in reply
    [request] = requests_of(live, cadre)
    assert request.answers == 0 and "一段语音" in request.text
    alert = sent(live, staff)[-1]
    assert f"【人工服务 第{request.id}号】" in alert and "没能识别成文字" in alert
    assert f"录音在工作台“人工”请求第{request.id}号" in alert and "公众平台" not in alert

    [row] = settled(live, request.id, "saved")
    assert row.ticket_id is None and row.kind == "voice" and row.media_id == "VOICE-U1"
    assert STORED_NAME.fullmatch(row.file_name) and (media_dir(live) / row.file_name).is_file()
    assert fake.media_calls("VOICE-U1") == 1

    # Logged out: neither the list nor the recording.
    client = live.test_client()
    url = f"/console/help/{request.id}/media/{row.id}"
    for path in ("/console/tickets", url):
        refused = client.get(path)
        assert refused.status_code == 302 and "/console/login" in refused.location
    # Logged in: the open request with a player, and the recording itself.
    logged_in(client, "赵敏")
    html = page(client, "/console/tickets")
    assert f'id="help-{request.id}"' in html and player(request.id, row.id) in html
    got = client.get(url)
    assert got.status_code == 200 and got.data
    assert got.mimetype == ("audio/mpeg" if FFMPEG else "audio/amr")
    assert got.headers["Cache-Control"] == "private, max-age=3600"
    # Only by its own request and id; never through a ticket's address.
    assert client.get(f"/console/help/{request.id + 1}/media/{row.id}").status_code == 404
    assert client.get(f"/console/help/{request.id}/media/{row.id + 99}").status_code == 404
    assert client.get(f"/console/tickets/{request.id}/media/{row.id}").status_code == 404


def test_a_second_unrecognised_voice_joins_the_request_and_is_kept_too(live, fake, wx, staff):
    fake.add_media("VOICE-U2", AMR, "audio/amr")
    fake.add_media("VOICE-U3", AMR, "audio/amr")
    cadre = bound_user(live)
    assert "没听清" in wx.voice(cadre, None, "VOICE-U2")
    again = wx.voice(cadre, None, "VOICE-U3")
    assert "您的语音已转给值班工作人员" in again and "听到的" in again
    [request] = requests_of(live, cadre)   # the same request, not a second one
    assert request.text.count("一段语音") == 2
    alert = sent(live, staff)[-1]
    assert f"【人工服务 第{request.id}号】" in alert and "接着说" in alert
    assert f"录音在工作台“人工”请求第{request.id}号" in alert
    first, second = settled(live, request.id, "saved", "saved")
    assert (first.media_id, second.media_id) == ("VOICE-U2", "VOICE-U3")
    html = page(logged_in(live.test_client(), "赵敏"), "/console/tickets")
    assert player(request.id, first.id) in html and player(request.id, second.id) in html


def test_the_console_says_honestly_what_is_not_kept_yet_or_at_all(live, fake, wx, staff,
                                                                  monkeypatch):
    keeper = live.extensions["yinling"].services.media
    lost: list[int] = []
    monkeypatch.setattr(keeper, "enqueue", lost.extend)   # not downloaded yet
    cadre = bound_user(live)
    assert "没听清" in wx.voice(cadre, None, "VOICE-U4")
    monkeypatch.undo()
    [request] = requests_of(live, cadre)
    [row] = recordings(live, request.id)
    assert lost == [row.id] and row.status == "pending"
    client = logged_in(live.test_client(), "赵敏")
    html = page(client, "/console/tickets")
    assert f'id="recording-{row.id}"' in html and "语音：正在保存" in html
    assert client.get(f"/console/help/{request.id}/media/{row.id}").status_code == 404

    keeper.enqueue(lost)   # WeChat no longer has it (the fake never did): 40007
    settled(live, request.id, "expired")
    assert "语音：未能保存：微信已删除" in page(client, "/console/tickets")


def test_a_voice_in_a_ticket_thread_keeps_its_recording_with_the_ticket(live, fake, wx, staff):
    from tests.test_media import report

    fake.add_media("VOICE-U5", AMR, "audio/amr")
    cadre = bound_user(live)
    n = report(wx, cadre, None, None)
    assert f"回复{n}号问题" in wx.text(staff, f"回复 {n} 明天上午上门看看")
    reply = wx.voice(cadre, None, "VOICE-U5")
    assert f"（{n}号问题）" in reply and "听到的" in reply
    found = wait_for(lambda: [a for a in _ticket_voice(live, n) if a.status == "saved"])
    assert found and found[0].media_id == "VOICE-U5"
    html = page(logged_in(live.test_client(), "赵敏"), f"/console/tickets/{n}")
    assert re.search(rf'<audio controls preload="metadata" src="/console/tickets/{n}/media/'
                     rf'{found[0].id}"', html) or not FFMPEG


def _ticket_voice(app, number: int) -> list[TicketAttachment]:
    with db(app) as s:
        rows = list(s.scalars(select(TicketAttachment).where(
            TicketAttachment.ticket_id == number, TicketAttachment.kind == "voice")))
        s.expunge_all()
    return rows


def test_a_recording_after_staff_answered_stays_in_the_console_until_answered_again(
        live, fake, wx, staff):
    fake.add_media("VOICE-U6", AMR, "audio/amr")
    cadre = bound_user(live)
    assert "工作人员" in wx.text(cadre, "人工")
    [request] = requests_of(live, cadre)
    assert "已答复" in wx.text(staff, f"答复 {request.id} 您好，请讲")
    client = logged_in(live.test_client(), "赵敏")
    assert f'id="help-{request.id}"' not in page(client, "/console/tickets")   # answered
    reply = wx.voice(cadre, None, "VOICE-U6")
    assert "您的语音已转给工作人员赵敏" in reply
    assert f"录音在工作台“人工”请求第{request.id}号" in sent(live, staff)[-1]
    [row] = settled(live, request.id, "saved")
    html = page(client, "/console/tickets")
    assert f'id="help-{request.id}"' in html and "答复过，TA又发来语音" in html
    assert player(request.id, row.id) in html
    assert "已答复" in wx.text(staff, f"答复 {request.id} 好的，我明天上午来")
    assert f'id="help-{request.id}"' not in page(client, "/console/tickets")
