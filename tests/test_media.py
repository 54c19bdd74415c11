"""Photos and voice kept (issue 10, item 5): through the real webhook a report's photo and voice
are downloaded from the fake WeChat API (media/get) by a job after the commit, stored under
YINLING_MEDIA_DIR with unguessable names, served to logged-in staff only (voice as MP3), and
`详情` and the console say honestly what was saved; transient failures are retried, 40007 and
three days give up, and the media sweep picks up what a lost queue message left behind."""
from __future__ import annotations

import base64
import os
import random
import re
import shutil
import stat
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import select

from bot import media as media_module
from bot.console.auth import set_password
from bot.jobs import run_job
from bot.media import MEDIA_QUEUE, MediaStore
from bot.worker import run_worker
from handlers.issues.jobs import jobs as issue_jobs
from models import Staff
from models.issues import TicketAttachment
from tests.conftest import (PASSWORD, bound_user, console_staff, db, drain, logged_in, oid, page,
                            wait_for)
from tests.fake_wechat import live_settings
from tests.wx import WeChat

# An 8x8 red JPEG (ffmpeg), and one second of AMR-NB speech frames (12.2 kbit/s mode).
JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAgAAAQABAAD//gAQTGF2YzU5LjM3LjEwMAD/2wBDAAgUFBcUFxsbGxsbGyAeICEhISAgICAhIS"
    "EkJCQqKiokJCQhISQkKCgqKi4vLisrKisvLzIyMjw8OTlGRkhWVmf/xABMAAEBAAAAAAAAAAAAAAAAAAAABgEBAQAA"
    "AAAAAAAAAAAAAAAABgcQAQAAAAAAAAAAAAAAAAAAAAARAQAAAAAAAAAAAAAAAAAAAAD/wAARCAAIAAgDASIAAhEAAxEA"
    "/9oADAMBAAIRAxEAPwCLAFF/f//Z")
_noise = random.Random(7)
AMR = b"#!AMR\n" + b"".join(bytes([0x3C]) + bytes(_noise.randrange(256) for _ in range(31))
                            for _ in range(50))
STORED_NAME = re.compile(r"\d{4}-\d{2}/[A-Za-z0-9_-]{32}\.(jpg|png|mp3|amr)")
FFMPEG = shutil.which("ffmpeg")


def needs_ffmpeg() -> None:
    """Skip (with the reason) where Debian's ffmpeg is missing; CI installs it, so fail there."""
    if FFMPEG is None:
        if os.environ.get("YINLING_REQUIRE_FFMPEG"):
            pytest.fail("YINLING_REQUIRE_FFMPEG is set but ffmpeg is not installed")
        pytest.skip("voice conversion: ffmpeg is not installed (apt-get install ffmpeg)")


@pytest.fixture
def staff(live) -> str:
    """赵敏 (every category's staff), on duty in chat, with a console password; her openid."""
    return console_staff(live)


@pytest.fixture
def wx(live):
    """WeChat's servers posting to the live app (which downloads from the fake)."""
    return WeChat(live)


def photo(wx, openid: str, media_id: str) -> str:
    """Send a photo message; the reply."""
    return wx.reply_of(wx.post_xml(wx.xml(openid, "image", MediaId=media_id,
                                          PicUrl=f"http://mmbiz.example/{media_id}.jpg")))


def voice(wx, openid: str, media_id: str, words: str) -> str:
    """Send a voice message WeChat recognised as `words`; the reply."""
    return wx.reply_of(wx.post_xml(wx.xml(openid, "voice", MediaId=media_id, Format="amr",
                                          Recognition=words)))


def report(wx, openid: str, photo_id: str | None, voice_id: str | None) -> int:
    """A heating report (a photo first, then the description spoken) through the webhook."""
    assert "哪方面的问题" in wx.text(openid, "反映问题")
    if photo_id:
        assert "收到照片" in photo(wx, openid, photo_id)
    assert "遇到了什么问题" in wx.text(openid, "供暖水电")
    words = "暖气片不热，家里只有十二度。"
    assert "急不急" in (voice(wx, openid, voice_id, words) if voice_id else wx.text(openid, words))
    assert "请核对" in wx.text(openid, "1")
    return int(re.search(r"问题编号是 (\d+) 号", wx.text(openid, "1")).group(1))


def kept(app, number: int) -> dict[str, TicketAttachment]:
    """The ticket's photo and voice attachments by kind, read fresh."""
    with db(app) as s:
        rows = list(s.scalars(select(TicketAttachment).where(
            TicketAttachment.ticket_id == number, TicketAttachment.kind.in_(("image", "voice")))
            .order_by(TicketAttachment.id)))
        s.expunge_all()
    return {row.kind: row for row in rows}


def settled(app, number: int, *statuses: str, seconds: float = 10.0) -> dict:
    """Wait until the ticket's photo/voice have these statuses (in kind order); them."""
    found = wait_for(lambda: (rows := kept(app, number)) and
                     tuple(rows[k].status for k in sorted(rows)) == statuses and rows, seconds)
    assert found, {k: (v.status, v.error, v.attempts) for k, v in kept(app, number).items()}
    return found


def sweep(app, now: datetime) -> int:
    """Run the media sweep as if at `now`."""
    spec = next(j for j in issue_jobs if j.name == "media_sweep")
    return run_job(app.extensions["yinling"], spec, now)


def local_now(app) -> datetime:
    """Now, in YINLING_TZ (what a scheduled job is given)."""
    return datetime.now(app.extensions["yinling"].settings.zone)


def media_dir(app) -> Path:
    """The app's YINLING_MEDIA_DIR."""
    return Path(app.extensions["yinling"].settings.media_dir)


# ---- the whole way: webhook, job, files, console and 详情 ---------------------------------------
def test_a_reports_photo_and_voice_are_downloaded_kept_and_shown_to_staff_only(
        live, fake, wx, staff):
    fake.add_media("PHOTO-1", JPEG, "image/jpeg")
    fake.add_media("VOICE-1", AMR, "audio/amr")
    cadre = bound_user(live)
    n = report(wx, cadre, "PHOTO-1", "VOICE-1")
    rows = settled(live, n, "saved", "saved")
    photo_row, voice_row = rows["image"], rows["voice"]
    assert fake.media_calls("PHOTO-1") == 1 and fake.media_calls("VOICE-1") == 1
    # Unguessable names under the configured folder, owner-only, nothing of WeChat's id in them.
    for row in (photo_row, voice_row):
        assert STORED_NAME.fullmatch(row.file_name) and "PHOTO" not in row.file_name
        path = media_dir(live) / row.file_name
        assert path.is_file() and stat.S_IMODE(path.stat().st_mode) == 0o600
        assert row.size == path.stat().st_size and row.saved_at is not None
    assert (media_dir(live) / photo_row.file_name).read_bytes() == JPEG
    assert photo_row.content_type == "image/jpeg" and photo_row.attempts == 1
    assert not list(media_dir(live).rglob(".part-*"))   # no temporary file left behind

    # Logged out: the file is not served, the login page is.
    client = live.test_client()
    url = f"/console/tickets/{n}/media/{photo_row.id}"
    refused = client.get(url)
    assert refused.status_code == 302 and "/console/login" in refused.location
    # Logged in: the ticket page shows the photo and a player; the files come with their type.
    logged_in(client, "赵敏")
    html = page(client, f"/console/tickets/{n}")
    assert f'<img src="{url}"' in html
    assert f'<audio controls preload="metadata" src="/console/tickets/{n}/media/' \
           f'{voice_row.id}"' in html or voice_row.content_type == "audio/amr"
    assert "照片1张、语音1段已保存" in html and "已保存（" not in html
    got = client.get(url)
    assert got.status_code == 200 and got.data == JPEG and got.mimetype == "image/jpeg"
    assert got.headers["Cache-Control"] == "private, max-age=3600"
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    # Only by the attachment's own ticket and id.
    assert client.get(f"/console/tickets/{n + 1}/media/{photo_row.id}").status_code == 404
    assert client.get(f"/console/tickets/{n}/media/{photo_row.id + 99}").status_code == 404

    # 详情 in chat says what was saved.
    detail = wx.text(staff, f"详情 {n}")
    assert "照片和语音：照片1张、语音1段已保存。" in detail and "VOICE-1" not in detail


def test_voice_is_served_as_mp3_with_the_amr_original_kept(live, fake, wx, staff):
    needs_ffmpeg()
    fake.add_media("VOICE-2", AMR, "audio/amr")
    n = report(wx, bound_user(live), None, "VOICE-2")
    row = settled(live, n, "saved")["voice"]
    assert row.file_name.endswith(".mp3") and row.content_type == "audio/mpeg" and not row.error
    original = media_dir(live) / (row.file_name[:-4] + ".amr")
    assert original.read_bytes() == AMR and stat.S_IMODE(original.stat().st_mode) == 0o600
    client = logged_in(live.test_client(), "赵敏")
    got = client.get(f"/console/tickets/{n}/media/{row.id}")
    assert got.status_code == 200 and got.mimetype == "audio/mpeg"
    assert got.data[:3] == b"ID3" or (got.data[0] == 0xFF and got.data[1] & 0xE0 == 0xE0)
    assert "attachment" not in got.headers.get("Content-Disposition", "")
    ranged = client.get(f"/console/tickets/{n}/media/{row.id}", headers={"Range": "bytes=0-9"})
    assert ranged.status_code == 206 and len(ranged.data) == 10   # the player can seek


def test_without_ffmpeg_the_recording_is_kept_as_amr_and_offered_as_a_download(
        live, fake, wx, staff, monkeypatch):
    monkeypatch.setattr(media_module, "FFMPEG", "no-such-ffmpeg")
    fake.add_media("VOICE-3", AMR, "audio/amr")
    n = report(wx, bound_user(live), None, "VOICE-3")
    row = settled(live, n, "saved")["voice"]
    assert row.file_name.endswith(".amr") and row.content_type == "audio/amr"
    client = logged_in(live.test_client(), "赵敏")
    html = page(client, f"/console/tickets/{n}")
    assert "AMR格式，浏览器不能直接播放" in html and "<audio" not in html
    got = client.get(f"/console/tickets/{n}/media/{row.id}")
    assert got.data == AMR and got.headers["Content-Disposition"].startswith("attachment")


# ---- retries, WeChat's deletion, lost queue messages --------------------------------------------
def test_a_transient_failure_is_retried_after_its_backoff_and_saved(live, fake, wx, staff):
    fake.add_media("PHOTO-4", JPEG, "image/jpeg")
    fake.inject("media", status=500)        # WeChat's first answer: a server error
    n = report(wx, bound_user(live), "PHOTO-4", None)
    row = wait_for(lambda: (r := kept(live, n)["image"]).attempts == 1 and
                   r.next_try_at is not None and r.next_try_at < r.created_at + timedelta(
                       minutes=1) and r)
    assert row and row.status == "pending", kept(live, n)
    html = page(logged_in(live.test_client(), "赵敏"), f"/console/tickets/{n}")
    assert "照片1张正在保存" in html and "已保存" not in html
    assert sweep(live, local_now(live)) == 0   # not yet: its retry is 30 s away
    drain(live)   # pushes sent first: a send paced across the travel would wait for its span
    with time_machine.travel(datetime.now().astimezone() + timedelta(seconds=45), tick=True):
        assert sweep(live, local_now(live)) == 1
        row = settled(live, n, "saved")["image"]
    # Two attempts (the fake's tokens age with the travel: the second may replace one first).
    assert row.attempts == 2 and fake.media_calls("PHOTO-4") in (2, 3)


def test_media_wechat_no_longer_has_is_expired_and_said_so(live, fake, wx, staff):
    fake.add_media("PHOTO-5", JPEG, "image/jpeg")   # the voice is unknown to WeChat: 40007
    n = report(wx, bound_user(live), "PHOTO-5", "VOICE-GONE")
    rows = settled(live, n, "saved", "expired")
    assert rows["voice"].error == "gone" and rows["voice"].file_name is None
    assert fake.media_calls("VOICE-GONE") == 1   # not retried
    html = page(logged_in(live.test_client(), "赵敏"), f"/console/tickets/{n}")
    assert "未能保存：微信已删除" in html
    assert "照片1张已保存；语音1段未能保存（微信已删除）" in html
    detail = wx.text(staff, f"详情 {n}")
    assert "照片和语音：照片1张已保存；语音1段未能保存（微信已删除）。" in detail


def test_after_three_days_of_failures_it_gives_up(live, fake, wx, staff):
    fake.add_media("PHOTO-6", JPEG, "image/jpeg")
    fake.inject("media", errcode=-1, times=None)   # WeChat busy, again and again
    n = report(wx, bound_user(live), "PHOTO-6", None)
    wait_for(lambda: kept(live, n)["image"].attempts == 1)
    three_days = local_now(live) + timedelta(days=3, minutes=1)
    assert sweep(live, three_days) == 1
    row = kept(live, n)["image"]
    assert (row.status, row.error, row.attempts) == ("expired", "too_old", 1)
    html = page(logged_in(live.test_client(), "赵敏"), f"/console/tickets/{n}")
    assert "未能保存：超过3天，微信已删除" in html


def test_the_sweep_picks_up_an_attachment_whose_queue_message_was_lost(
        live, fake, wx, staff, monkeypatch):
    fake.add_media("PHOTO-7", JPEG, "image/jpeg")
    keeper = live.extensions["yinling"].services.media
    lost: list[int] = []
    monkeypatch.setattr(keeper, "enqueue", lost.extend)   # the queue message never arrives
    n = report(wx, bound_user(live), "PHOTO-7", None)
    assert lost == [kept(live, n)["image"].id]
    monkeypatch.undo()
    assert kept(live, n)["image"].status == "pending" and fake.media_calls() == 0
    assert sweep(live, local_now(live)) == 0   # its own job may still be on its way
    assert sweep(live, local_now(live) + timedelta(minutes=2)) == 1
    assert settled(live, n, "saved")["image"].attempts == 1


def test_one_attempt_at_a_time_and_none_after_it_is_settled(live, fake, wx, staff,
                                                           monkeypatch):
    fake.add_media("PHOTO-8", JPEG, "image/jpeg")
    keeper = live.extensions["yinling"].services.media
    lost: list[int] = []
    monkeypatch.setattr(keeper, "enqueue", lost.extend)   # this test runs the attempts itself
    n = report(wx, bound_user(live), "PHOTO-8", None)
    [attachment_id] = lost
    held = keeper._claim(attachment_id, media_module.utcnow())   # another run holds it
    assert held is not None and keeper.attempt(attachment_id) is None
    assert fake.media_calls() == 0
    drain(live)   # pushes sent first: a send paced across the travel would wait for its span
    with time_machine.travel(datetime.now().astimezone() + media_module.LEASE
                             + timedelta(seconds=1), tick=True):
        assert keeper.attempt(attachment_id) == "saved"   # the holder died: taken over
    calls = fake.media_calls()
    # The first holder comes back late: its outcome is not recorded and its file is dropped.
    late = keeper.store.new_name(datetime.now()) + ".jpg"
    keeper.store.write(late, JPEG)
    assert keeper._settle(held, {"status": "saved", "file_name": late, "size": 1}) is None
    assert keeper.store.path(late) is None
    assert kept(live, n)["image"].attempts == 2
    assert keeper.attempt(attachment_id) is None and fake.media_calls() == calls


def test_what_is_not_a_photo_or_a_recording_is_refused(live, fake, wx, staff, monkeypatch):
    fake.add_media("PHOTO-9", b"GIF89a" + bytes(20), "image/gif")
    fake.add_media("VOICE-9", JPEG, "audio/amr")
    n = report(wx, bound_user(live), "PHOTO-9", "VOICE-9")
    rows = settled(live, n, "failed", "failed")
    assert (rows["image"].error, rows["voice"].error) == ("not_photo", "not_voice")
    monkeypatch.setattr(media_module, "MAX_BYTES", 100)
    fake.add_media("PHOTO-10", JPEG, "image/jpeg")
    n = report(wx, bound_user(live, phone="13800001002"), "PHOTO-10", None)
    assert settled(live, n, "failed")["image"].error == "too_large"
    assert not [p for p in media_dir(live).rglob("*") if p.is_file()]


def test_a_spoken_note_keeps_its_recording(live, fake, wx, staff):
    fake.add_media("VOICE-11", AMR, "audio/amr")
    cadre = bound_user(live)
    n = report(wx, cadre, None, None)
    assert "要为" in wx.text(cadre, f"补充 {n}")
    assert f"已补充到{n}号问题" in voice(wx, cadre, "VOICE-11", "楼下也不热")
    assert settled(live, n, "saved")["voice"].media_id == "VOICE-11"
    assert "补充：楼下也不热（语音）" in wx.text(staff, f"详情 {n}")


# ---- sandbox mode and the RQ worker -------------------------------------------------------------
def test_in_sandbox_mode_nothing_is_downloaded_and_the_console_says_so(make_app):
    app = make_app()   # no APPID: nothing to download from
    with db(app) as s:
        s.add(Staff(name="赵敏", openid=oid("staff"), on_duty=True))
        s.flush()
        set_password(s, "赵敏", PASSWORD)
    n = report(WeChat(app), bound_user(app), "PHOTO-S", None)
    row = kept(app, n)["image"]
    assert (row.status, row.error) == ("failed", "sandbox")
    html = page(logged_in(app.test_client(), "赵敏"), f"/console/tickets/{n}")
    assert "未能保存：演示模式没有连接微信" in html


def test_with_redis_a_worker_downloads_from_the_media_queue(make_app, fake):
    from rq import Queue

    app = make_app(**live_settings(fake, redis_url="redis://in-process/0"))
    fake.add_media("PHOTO-12", JPEG, "image/jpeg")
    n = report(WeChat(app), bound_user(app), "PHOTO-12", None)
    yl = app.extensions["yinling"]
    queue = Queue(MEDIA_QUEUE, connection=yl.redis)
    assert queue.count == 1 and fake.media_calls() == 0   # queued, not done by the web process
    run_worker(app, burst=True, concurrency=1)
    assert kept(app, n)["image"].status == "saved" and queue.count == 0


# ---- the store ----------------------------------------------------------------------------------
def test_the_store_never_reaches_outside_its_folder(tmp_path):
    store = MediaStore(tmp_path / "media")
    name = store.new_name(datetime(2026, 12, 3)) + ".jpg"
    store.write(name, JPEG)
    assert store.path(name).read_bytes() == JPEG
    (tmp_path / "secret.txt").write_text("x")
    for evil in ("../secret.txt", str(tmp_path / "secret.txt"), "", None, "2026-12"):
        assert store.path(evil) is None
    assert stat.S_IMODE((tmp_path / "media" / "2026-12").stat().st_mode) == 0o700


# ---- the migration ------------------------------------------------------------------------------
def test_migration_0017_makes_earlier_photos_and_voice_pending(backend):
    from sqlalchemy import create_engine, insert, text

    import models
    from bot.migrate import upgrade
    from models import Cadre
    from models.issues import Ticket

    url, _ = backend
    engine = create_engine(url)
    with engine.begin() as conn:   # from nothing to the revision before, with three attachments
        models.Base.metadata.drop_all(conn)
        if conn.dialect.has_table(conn, "alembic_version"):
            conn.execute(text("DROP TABLE alembic_version"))
    upgrade(url, "0016")
    with engine.begin() as conn:   # tables 0017 leaves alone: through the models
        conn.execute(insert(Cadre).values(id=1, name="王建国", phone="13800001001"))
        conn.execute(insert(Ticket).values(id=1, cadre_id=1, reporter_openid="o-1",
                                           category="utilities", description="暖气不热"))
        for kind, media_id in (("image", "P1"), ("voice", None), ("location", None)):
            conn.execute(text("INSERT INTO ticket_attachment (ticket_id, kind, media_id, "
                              "created_at) VALUES (1, :kind, :media_id, :at)"),
                         {"kind": kind, "media_id": media_id, "at": datetime(2026, 12, 1, 2, 0)})
    upgrade(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT kind, status, error, attempts FROM ticket_attachment "
                                 "ORDER BY id")).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("image", "pending", None, 0),
                                        ("voice", "failed", "no_media_id", 0),
                                        ("location", None, None, 0)]


def test_a_media_folder_that_cannot_be_made_stops_the_start(make_app, tmp_path):
    from bot.settings import SettingsError

    (tmp_path / "taken").write_text("a file, not a folder")
    with pytest.raises(SettingsError, match="YINLING_MEDIA_DIR .*taken"):
        make_app(media_dir=str(tmp_path / "taken" / "media"))
    with pytest.raises(SettingsError, match="YINLING_MEDIA_DIR"):
        make_app(media_dir=" ")
    make_app(media_dir=str(tmp_path / "new" / "media"))   # made when missing
    assert stat.S_IMODE((tmp_path / "new" / "media").stat().st_mode) == 0o700
