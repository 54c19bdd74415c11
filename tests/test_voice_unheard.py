"""Voice WeChat could not recognise reaches a person (issue 11, item 6): through the real
webhook the recording opens (or joins) a 人工 request, on-duty staff are told a recording waits
in the console, the recording is downloaded and kept by bot/media.py like a ticket's, and the
console plays it to logged-in staff only; what could not be kept is said honestly, to staff
and, once, to the user who sent it (asked to say it again); `待办` says which lines have a
recording a person must listen to."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from models import Binding
from models.issues import TicketAttachment
from models.people import HelpRequest
from tests.conftest import bound_user, console_staff, db, logged_in, oid, page, sent, wait_for
from tests.fake_wechat import live_settings
from tests.test_media import AMR, FFMPEG, JPEG, STORED_NAME, local_now, media_dir, sweep
from tests.wx import WeChat

LOST = "没能保存下来"   # what the notice of a lost recording says (core/voice_lost)


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


# ---- a recording that could not be kept is asked for again --------------------------------------
def lost_notices(app, openid: str) -> list[str]:
    """The messages queued for openid that say a recording of theirs was lost."""
    return [body for body in sent(app, openid) if LOST in body]


def test_a_recording_wechat_no_longer_has_is_asked_for_again_once(live, fake, wx, staff):
    fake.add_media("VOICE-U9", AMR, "audio/amr")   # the second one WeChat never had: 40007
    cadre = bound_user(live)
    assert "没听清" in wx.voice(cadre, None, "VOICE-U9")
    assert "您的语音已转给值班工作人员" in wx.voice(cadre, None, "VOICE-GONE-U")
    [request] = requests_of(live, cadre)
    kept, lost = settled(live, request.id, "saved", "expired")
    assert lost.error == "gone" and lost.sender_openid == cadre
    [notice] = wait_for(lambda: lost_notices(live, cadre))
    at = lost.created_at.astimezone(live.extensions["yinling"].settings.zone)
    assert f"您今天{at.hour}:{at.minute:02d}发给工作人员的那段语音没能保存下来" in notice
    assert "请再说一遍，或者打字告诉我们" in notice and "请回复数字" not in notice
    # Settled once, told once: another attempt or sweep finds nothing to do.
    keeper = live.extensions["yinling"].services.media
    assert keeper.attempt(lost.id) is None and keeper.attempt(kept.id) is None
    sweep(live, local_now(live) + timedelta(minutes=5))
    assert len(lost_notices(live, cadre)) == 1
    assert not lost_notices(live, staff)


def test_a_recording_given_up_after_three_days_is_asked_for_again_once(live, fake, wx, staff):
    fake.inject("media", errcode=-1, times=None)   # WeChat busy, again and again
    cadre = bound_user(live)
    assert "没听清" in wx.voice(cadre, None, "VOICE-U10")
    [request] = requests_of(live, cadre)
    assert wait_for(lambda: recordings(live, request.id)[0].attempts == 1)
    assert not lost_notices(live, cadre)   # a failure that will be retried is no loss
    three_days = local_now(live) + timedelta(days=3, minutes=1)
    assert sweep(live, three_days) == 1
    [row] = recordings(live, request.id)
    assert (row.status, row.error) == ("expired", "too_old")
    [notice] = lost_notices(live, cadre)
    at = row.created_at.astimezone(three_days.tzinfo)
    assert f"您{at.month}月{at.day}日{at.hour}:{at.minute:02d}发给工作人员的那段语音" in notice
    assert sweep(live, three_days) == 0 and len(lost_notices(live, cadre)) == 1


def test_family_who_spoke_a_lost_note_are_asked_and_their_next_words_join_the_ticket(
        live, fake, wx, staff):
    from tests.test_media import report, voice

    cadre = bound_user(live)
    family = oid("family")
    with db(live) as s:
        cadre_id = s.scalar(select(Binding.cadre_id).where(Binding.openid == cadre))
        s.add(Binding(openid=family, cadre_id=cadre_id, relation="family"))
    n = report(wx, cadre, "PHOTO-GONE", None)   # a photo WeChat no longer has: nobody asked
    assert "要为" in wx.text(family, f"补充 {n}")
    assert f"已补充到{n}号问题" in voice(wx, family, "VOICE-GONE-F", "楼上漏水了")
    rows = wait_for(lambda: (r := _ticket_media(live, n)) and
                    all(a.status == "expired" for a in r) and len(r) == 2 and r)
    assert rows and {a.sender_openid for a in rows} == {cadre, family}
    [notice] = wait_for(lambda: lost_notices(live, family))
    assert f"为{n}号问题发的那段语音没能保存下来" in notice
    assert not lost_notices(live, cadre)   # neither for the photo nor for family's recording
    # What family say next goes to the ticket (not a new report), and reaches its staff.
    reply = wx.text(family, "楼上卫生间漏水，滴到我家厨房了")
    assert f"（{n}号问题）" in reply and "哪方面的问题" not in reply
    assert any("滴到我家厨房了" in b for b in sent(live, staff))


def _ticket_media(app, number: int) -> list[TicketAttachment]:
    with db(app) as s:
        rows = list(s.scalars(select(TicketAttachment).where(
            TicketAttachment.ticket_id == number, TicketAttachment.kind.in_(("image", "voice")))
            .order_by(TicketAttachment.id)))
        s.expunge_all()
    return rows


# ---- 待办 says which lines have a recording to hear ----------------------------------------------
PUBLIC = "https://ylt.example.gov.cn"


def test_todo_says_which_lines_have_a_recording_to_hear(make_app, fake):
    from tests.test_media import report

    app = make_app(**live_settings(fake, public_url=PUBLIC))
    wx, staff = WeChat(app), console_staff(app)
    fake.add_media("VOICE-T1", AMR, "audio/amr")
    fake.add_media("PHOTO-T1", JPEG, "image/jpeg")
    spoken = report(wx, bound_user(app), None, "VOICE-T1")
    typed = report(wx, bound_user(app, "李秀兰", "13800001002"), "PHOTO-T1", None)
    lost = bound_user(app, "孙老", "13800001003")
    assert "没听清" in wx.voice(lost, None, "VOICE-GONE-T")
    [request] = requests_of(app, lost)
    settled(app, request.id, "expired")
    assert wait_for(lambda: [a.status for a in _ticket_media(app, spoken)] == ["saved"])
    todo = wx.text(staff, "待办")
    lines = {line.split("｜")[0]: line for line in todo.splitlines() if "｜" in line}
    assert lines[f"{spoken}号 供暖水电"].endswith("（有语音，请在工作台收听）")
    assert "语音" not in lines[f"{typed}号 供暖水电"]
    assert lines[f"第{request.id}号"].endswith("（语音没能保存，已请TA重说）")
    assert f"工作台：{PUBLIC}/console/tickets" in todo


def test_todo_lists_a_recording_sent_after_the_answer_until_answered_again(live, fake, wx,
                                                                        staff):
    fake.add_media("VOICE-T2", AMR, "audio/amr")
    cadre = bound_user(live)
    assert "工作人员" in wx.text(cadre, "人工")
    [request] = requests_of(live, cadre)
    assert "已答复" in wx.text(staff, f"答复 {request.id} 您好，请讲")
    assert f"第{request.id}号" not in wx.text(staff, "待办")
    assert "您的语音已转给工作人员赵敏" in wx.voice(cadre, None, "VOICE-T2")
    settled(live, request.id, "saved")
    todo = wx.text(staff, "待办")
    [line] = [line for line in todo.splitlines() if line.startswith(f"第{request.id}号")]
    assert "答复过，TA又发来语音" in line and line.endswith("（有语音，请在工作台收听）")
    assert "工作台：" not in todo   # no public address configured: no link
    assert "已答复" in wx.text(staff, f"答复 {request.id} 好的，我明天上午来")
    assert f"第{request.id}号" not in wx.text(staff, "待办")
