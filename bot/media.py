"""Photos and voice of tickets kept (PRODUCT.md 7.2), and the recordings of 人工 requests
(voice WeChat could not recognise, §5): WeChat deletes a message's media three days after it
arrives, so each one is downloaded through media/get within minutes. Both are rows of
TicketAttachment (one parent each); nothing here depends on which parent but
the notice that asks for a lost recording again, which names it.

- A new photo or voice attachment is `pending`. Once the transaction that created it commits,
  its id is queued: on RQ's `yinling-media` queue when REDIS_URL is set (served by
  `flask --app bot worker`), else on a small thread pool in this process. "Once it commits" is
  a SQLAlchemy after_commit hook on the session, so the webhook's inbox, the console, jobs and
  the spool's replay all queue the same way; a rollback queues nothing. Nothing is downloaded
  on the webhook's path.
- `MediaKeeper.attempt(id)` claims the row (attempts + 1 and a lease in next_try_at, on the
  condition that nobody changed the attempts it read: two runs never download one attachment
  at once), downloads outside any transaction, checks and stores the file, then records the
  outcome: saved; failed (not a JPEG/PNG photo or an AMR recording, over MAX_BYTES); expired
  (WeChat answers 40007, or three days have passed); or pending again, due after BACKOFF.
- The `media_sweep` job (every minute, handlers/issues/jobs.py) expires what WeChat no longer
  keeps and queues what is due: retries, and attachments whose queue message was lost.
- A voice recording lost for good (expired, or failed for a reason of the recording, not of
  this server) is asked for again: in the transaction that settles it, the user who sent it
  gets one push (core/voice_lost, through the outbox: the delivery rules and the 48-hour
  window apply) naming its ticket or 人工 request, and what they say next goes there (a
  thread, unless another conversation holds them). Settling happens once, so the push does;
  the campaign key `media:lost:<id>` makes sure. Photos keep WeChat's picture address for
  staff, so nobody is asked to send one again.
- Files: YINLING_MEDIA_DIR/YYYY-MM/<32 random URL-safe characters>.<ext>, written to a
  temporary file in the same folder, fsynced and renamed into place; owner-only (0600 files,
  0700 folders). The console serves them by attachment id, never by a name from a request.
  Photos are kept as sent. Voice is converted from AMR to MP3 by ffmpeg: MP3 is the one
  format every browser staff may use plays in <audio> — Chromium whatever its codec build,
  Firefox, Safari and the older Chromium-based browsers of government offices — while Ogg/Opus
  fails in older Safari and AAC needs a proprietary-codec build of Chromium. The AMR original
  is kept beside it (same name, `.amr`): the recording exactly as WeChat had it, a few KB.
"""
from __future__ import annotations

import logging
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import and_, event, or_, select, update

from bot.kv import RedisDown
from bot.settings import SettingsError
from bot.wechat import MEDIA_GONE, Outcome, download_media, make_client
from models import Follower, utcnow
from models.issues import (MEDIA_EXPIRED, MEDIA_FAILED, MEDIA_KINDS, MEDIA_PENDING, MEDIA_SAVED,
                           TicketAttachment)

logger = logging.getLogger(__name__)

MEDIA_QUEUE = "yinling-media"
MAX_BYTES = 10 * 1024 * 1024   # WeChat's own limit for a photo (a voice message is under 2 MB)
KEPT_BY_WECHAT = timedelta(days=3)
# Seconds from a failed attempt to the next (the 1st, 2nd, … failure); then every 4 hours,
# until three days after arrival. The sweep runs every minute, so a retry starts within a
# minute of its time.
BACKOFF = (30, 120, 600, 1800, 3600, 2 * 3600, 4 * 3600)
LEASE = timedelta(minutes=5)   # an attempt not settled by then is presumed dead
GRACE = timedelta(minutes=1)   # a new attachment's own queue message goes first
JOB_TIMEOUT = 120              # seconds: two API calls and one conversion, with room
SWEEP_BATCH = 100
FFMPEG = "ffmpeg"
FFMPEG_SECONDS = 30
PHOTO_TYPES = ((b"\xff\xd8\xff", "image/jpeg", ".jpg"),
               (b"\x89PNG\r\n\x1a\n", "image/png", ".png"))
AMR_MAGIC = (b"#!AMR\n", b"#!AMR-WB\n")
AMR_TYPE, MP3_TYPE = "audio/amr", "audio/mpeg"
_AFTER_COMMIT = "yinling.media.after_commit"   # session.info key: ids queued at the commit
# Why a recording was not kept that is this server's, not the recording's: its sender is not
# asked to say it again for these.
NOT_THE_SENDERS = ("sandbox", "no_media_id")
REPLY_WITHIN = timedelta(minutes=30)   # a loss told this soon answers the message: never held
ASKED_AGAIN_LISTENS = timedelta(hours=24)   # what the sender says next joins the same place


def check(settings) -> None:
    """Refuse to start unless YINLING_MEDIA_DIR is (or can be made) a writable folder."""
    root = Path(settings.media_dir)
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise SettingsError(f"YINLING_MEDIA_DIR {root} is not a folder this user can create "
                            f"({exc.strerror})") from exc
    if not os.access(root, os.W_OK | os.X_OK):
        raise SettingsError(f"YINLING_MEDIA_DIR {root} is not writable by this user")
    if shutil.which(FFMPEG) is None:
        logger.warning("ffmpeg is not installed: voice recordings are kept as AMR, which "
                       "browsers cannot play (apt-get install ffmpeg)")


# ---- the files -------------------------------------------------------------------------------
class MediaStore:
    """Files under YINLING_MEDIA_DIR: unguessable names, atomic writes, owner-only."""

    def __init__(self, root):
        self.root = Path(root)

    @staticmethod
    def new_name(now: datetime) -> str:
        """A fresh name relative to the folder, without extension: `YYYY-MM/<random>`."""
        return f"{now:%Y-%m}/{secrets.token_urlsafe(24)}"

    def write(self, name: str, data: bytes) -> None:
        """Write `data` as `name`: a temporary file (0600), fsynced, renamed into place."""
        target = self.root / name
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def path(self, name: str | None) -> Path | None:
        """The file stored as `name`, if it exists inside the folder (never outside it)."""
        if not name:
            return None
        root = self.root.resolve()
        path = (root / name).resolve()
        return path if path.is_relative_to(root) and path.is_file() else None

    def remove(self, names) -> None:
        """Delete stored files (those of an attempt that lost its claim)."""
        for name in names:
            path = self.path(name)
            if path is not None:
                path.unlink(missing_ok=True)


def stored_files(name: str | None) -> list[str]:
    """Every file behind a stored name: an MP3 recording has its AMR original beside it."""
    if not name:
        return []
    return [name, name[:-4] + ".amr"] if name.endswith(".mp3") else [name]


def amr_to_mp3(amr: bytes, scratch: Path) -> bytes | None:
    """The recording as MP3 (ffmpeg, no shell, time-limited); None when that cannot be done."""
    ffmpeg = shutil.which(FFMPEG)
    if ffmpeg is None:
        logger.warning("ffmpeg is not installed: a voice recording is kept as AMR only")
        return None
    with tempfile.TemporaryDirectory(dir=scratch, prefix=".ffmpeg-") as work:
        source, target = Path(work) / "in.amr", Path(work) / "out.mp3"
        source.write_bytes(amr)
        command = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-f", "amr",
                   "-i", str(source), "-vn", "-map_metadata", "-1", "-ac", "1", "-ar", "44100",
                   "-b:a", "48k", "-t", "600", "-f", "mp3", str(target)]
        try:
            subprocess.run(command, capture_output=True, timeout=FFMPEG_SECONDS, check=True)
        except subprocess.TimeoutExpired:
            logger.warning("ffmpeg took over %ss on a voice recording: kept as AMR only",
                           FFMPEG_SECONDS)
            return None
        except subprocess.CalledProcessError as exc:
            logger.warning("ffmpeg could not convert a voice recording (exit %s: %s): kept as "
                           "AMR only", exc.returncode,
                           exc.stderr.decode("utf-8", "replace").strip()[-200:])
            return None
        except OSError as exc:
            logger.warning("ffmpeg could not run (%s): a voice recording is kept as AMR only",
                           exc.strerror)
            return None
        mp3 = target.read_bytes() if target.exists() else b""
    return mp3 or None


# ---- creating attachments (services call this) ------------------------------------------------
def keep(work, attachments) -> None:
    """New photos and voice of a ticket or a 人工 request: pending, downloaded once `work`
    commits (in sandbox mode, with no account to download from, or without a media id:
    failed at once)."""
    fresh = []
    for item in attachments:
        if item.kind not in MEDIA_KINDS or item.status is not None:
            continue
        if not item.media_id:
            item.status, item.error = MEDIA_FAILED, "no_media_id"
        elif work.settings.sandbox:
            item.status, item.error = MEDIA_FAILED, "sandbox"
        else:
            item.status = MEDIA_PENDING
            fresh.append(item)
    work.db.flush()
    keeper = getattr(work.services, "media", None)
    if keeper is not None:
        keeper.after_commit(work.db, [item.id for item in fresh])


def sweep(work) -> int:
    """The media sweep: expire what WeChat no longer keeps (their senders asked again),
    queue what is due (retries, and attachments whose queue message was lost); how many."""
    session, now = work.db, work.now
    pending = TicketAttachment.status == MEDIA_PENDING
    gone = list(session.scalars(
        update(TicketAttachment).where(pending,
                                       TicketAttachment.created_at <= now - KEPT_BY_WECHAT)
        .values(status=MEDIA_EXPIRED, error="too_old", next_try_at=None)
        .returning(TicketAttachment.id)
        .execution_options(synchronize_session=False)))
    for attachment_id in gone:
        ask_again(session, work.push, attachment_id, now, work.settings.zone)
    expired = len(gone)
    due = list(session.scalars(
        select(TicketAttachment.id).where(pending, or_(
            TicketAttachment.next_try_at <= now,
            and_(TicketAttachment.next_try_at.is_(None),
                 TicketAttachment.created_at <= now - GRACE)))
        .order_by(TicketAttachment.id).limit(SWEEP_BATCH)))
    keeper = getattr(work.services, "media", None)
    if keeper is not None and due:
        keeper.after_commit(session, due)
    if expired or due:
        logger.info("media sweep: %d expired, %d queued", expired, len(due))
    return expired + len(due)


def ask_again(session, push, attachment_id: int, now: datetime, zone):
    """A voice recording just settled as not kept: ask its sender to say it again (once: call
    only in the transaction that settled it), and let their next words join the same place.
    `push(openid, template, *, campaign, kind, **values)` queues the message; its result, or
    None when nobody is to be told (a photo, a reason of this server's)."""
    row = session.get(TicketAttachment, attachment_id)
    if row is None or row.kind != "voice" or row.status not in (MEDIA_FAILED, MEDIA_EXPIRED) \
            or row.error in NOT_THE_SENDERS:
        return None
    if row.ticket is not None:
        place = ("ticket", row.ticket.id, row.ticket.assignee_id)
        openid = row.sender_openid or row.ticket.reporter_openid
    else:
        place = ("help", row.help_request.id, row.help_request.staff_id)
        openid = row.sender_openid or row.help_request.openid
    _listen_again(session, openid, place, now)
    at = row.created_at.astimezone(zone)
    kind = "reply" if now - row.created_at <= REPLY_WITHIN else "scheduled"
    logger.info("attachment %s: its sender is asked to say it again (%s)", row.id, row.error)
    return push(openid, "core/voice_lost", campaign=f"media:lost:{row.id}", kind=kind, at=at,
                today=now.astimezone(zone).date(),
                ticket=place[1] if place[0] == "ticket" else None)


def _listen_again(session, openid: str, place: tuple, now: datetime) -> None:
    """What the sender says next goes to the recording's ticket or request (a thread), unless
    another conversation (a staff member's reply elsewhere) holds them now."""
    follower = session.scalar(select(Follower).where(Follower.openid == openid))
    if follower is None:
        return
    held = follower.open_thread(now)
    if held is not None and held[:2] != place[:2]:
        return
    follower.thread_kind, follower.thread_ref, follower.thread_staff_id = place
    follower.thread_until = max(now + ASKED_AGAIN_LISTENS, follower.thread_until or now)


def keep_attachment(attachment_id: int) -> str | None:
    """RQ job (`flask --app bot worker`, queue yinling-media): one download attempt."""
    from bot import yinling

    return yinling().services.media.attempt(attachment_id)


# ---- downloading -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Claim:
    """An attempt this process holds on one attachment."""

    id: int
    kind: str
    media_id: str
    attempts: int
    created_at: datetime


class MediaKeeper:
    """Queues downloads after the commit and runs them: RQ with REDIS_URL, else threads."""

    THREADS = 2

    def __init__(self, settings, db, redis, hot=None, outbox=None):
        self.settings, self.db, self.redis = settings, db, redis
        self.hot = hot   # (client, breaker) that enqueue from the webhook's path
        self.outbox = outbox   # asks the sender of a lost recording to say it again
        self.store = MediaStore(settings.media_dir)
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._client = None

    # ---- queueing ------------------------------------------------------------------------
    def after_commit(self, session, ids) -> None:
        """Queue these attachments when `session`'s transaction commits (not if it rolls back)."""
        if not ids:
            return
        if _AFTER_COMMIT not in session.info:
            session.info[_AFTER_COMMIT] = []
            event.listen(session, "after_commit", self._committed)
            event.listen(session, "after_rollback", self._rolled_back)
        session.info[_AFTER_COMMIT].extend(ids)

    def _committed(self, session) -> None:
        if session.in_nested_transaction():   # a savepoint released, not the commit
            return
        ids, session.info[_AFTER_COMMIT] = session.info.get(_AFTER_COMMIT, []), []
        if not ids:
            return
        try:
            self.enqueue(ids)
        except Exception:  # noqa: BLE001 - raised out of commit() it would pass for a failed
            # commit of what is committed; the media sweep queues these within minutes.
            logger.exception("could not queue the download of attachments %s", ids)

    def _rolled_back(self, session) -> None:
        if not session.in_nested_transaction():
            session.info[_AFTER_COMMIT] = []

    def enqueue(self, ids) -> None:
        """Download these attachments soon; never blocks the caller for long."""
        if self.settings.redis_url:
            self._enqueue_rq(list(ids))
            return
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.THREADS, thread_name_prefix="media")
            for attachment_id in ids:
                self._pool.submit(self._run, attachment_id)

    def _enqueue_rq(self, ids: list[int]) -> None:
        from rq import Queue

        client, breaker = self.hot or (self.redis, None)
        queue = Queue(MEDIA_QUEUE, connection=client)
        jobs = [queue.prepare_data("bot.media.keep_attachment", args=(attachment_id,),
                                   timeout=JOB_TIMEOUT, result_ttl=0,
                                   description=f"keep media of attachment {attachment_id}")
                for attachment_id in ids]
        try:
            if breaker is None:
                queue.enqueue_many(jobs)
            else:
                breaker.call(queue.enqueue_many, jobs)
        except RedisDown:
            logger.warning("media queue unavailable: %d downloads wait for the media sweep",
                           len(ids))

    def _run(self, attachment_id: int) -> None:
        try:
            self.attempt(attachment_id)
        except Exception:  # noqa: BLE001 - a pool thread has nobody to tell; the sweep retries
            logger.exception("keeping the media of attachment %s failed", attachment_id)

    def shutdown(self) -> None:
        """Finish the downloads in hand and stop (a later enqueue starts afresh)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def client(self):
        """The WeChat client downloads go through (built on first use)."""
        with self._lock:
            if self._client is None:
                self._client = make_client(self.settings, self.redis)
            return self._client

    # ---- one attempt ---------------------------------------------------------------------
    def attempt(self, attachment_id: int) -> str | None:
        """One download attempt of a pending attachment that is due; its status after it,
        None when there was nothing to do (settled, not due, or another run holds it)."""
        now = utcnow()
        claim = self._claim(attachment_id, now)
        if claim is None:
            return None
        if now - claim.created_at >= KEPT_BY_WECHAT:
            return self._settle(claim, {"status": MEDIA_EXPIRED, "error": "too_old"})
        media = download_media(self.client(), claim.media_id, MAX_BYTES)
        if media.result.ok:
            try:
                values = self._store(claim, media.content, now)
            except OSError as exc:
                logger.warning("attachment %s: cannot write under YINLING_MEDIA_DIR (%s)",
                               claim.id, exc.strerror)
                values = self._retry(claim, now)
        else:
            values = self._failure(claim, media, now)
        return self._settle(claim, values)

    def _claim(self, attachment_id: int, now: datetime) -> Claim | None:
        """Take the attempt: attempts + 1 and a lease, if nobody changed the row meanwhile."""
        with self.db.session() as session:
            row = session.get(TicketAttachment, attachment_id)
            if row is None or row.status != MEDIA_PENDING or not row.media_id:
                return None
            if row.next_try_at is not None and row.next_try_at > now:
                return None   # waiting for its retry time, or held by a running attempt
            won = session.execute(
                update(TicketAttachment).where(TicketAttachment.id == row.id,
                                               TicketAttachment.status == MEDIA_PENDING,
                                               TicketAttachment.attempts == row.attempts)
                .values(attempts=row.attempts + 1, next_try_at=now + LEASE)
                .execution_options(synchronize_session=False)).rowcount
            if not won:
                return None
            return Claim(row.id, row.kind, row.media_id, row.attempts + 1, row.created_at)

    def _store(self, claim: Claim, data: bytes, now: datetime) -> dict:
        """Check the file and keep it: a photo as sent, a recording as MP3 beside its AMR."""
        saved = {"status": MEDIA_SAVED, "saved_at": now, "error": None, "next_try_at": None}
        if claim.kind == "image":
            kind = next(((t, ext) for magic, t, ext in PHOTO_TYPES if data.startswith(magic)),
                        None)
            if kind is None:
                return self._refused(claim, "not_photo")
            name = self.store.new_name(now) + kind[1]
            self.store.write(name, data)
            return {**saved, "file_name": name, "content_type": kind[0], "size": len(data)}
        if not data.startswith(AMR_MAGIC):
            return self._refused(claim, "not_voice")
        stem = self.store.new_name(now)
        self.store.write(stem + ".amr", data)
        mp3 = amr_to_mp3(data, self.store.root)
        if mp3 is None:   # kept, but only as a download: browsers do not play AMR
            return {**saved, "file_name": stem + ".amr", "content_type": AMR_TYPE,
                    "size": len(data), "error": "not_converted"}
        self.store.write(stem + ".mp3", mp3)
        return {**saved, "file_name": stem + ".mp3", "content_type": MP3_TYPE, "size": len(mp3)}

    def _failure(self, claim: Claim, media, now: datetime) -> dict:
        """What an unsuccessful media/get means for the attachment."""
        result = media.result
        if result.code == MEDIA_GONE:
            logger.info("attachment %s: WeChat no longer has the media (40007)", claim.id)
            return {"status": MEDIA_EXPIRED, "error": "gone", "next_try_at": None}
        if media.too_large:
            return self._refused(claim, "too_large")
        if result.sandbox:
            return self._refused(claim, "sandbox")
        if result.outcome is Outcome.REFUSED:
            logger.warning("attachment %s: media/get refused (%s)", claim.id, result.reason)
            return self._refused(claim, "refused")
        # Busy, rate limits, 5xx, timeouts; a configuration error (IP list, secret) may be put
        # right within the three days, so it is retried too.
        logger.warning("attachment %s: media/get attempt %d failed (%s, %s)", claim.id,
                       claim.attempts, result.outcome.value, result.reason)
        return self._retry(claim, now)

    @staticmethod
    def _refused(claim: Claim, why: str) -> dict:
        logger.warning("attachment %s: media not kept (%s)", claim.id, why)
        return {"status": MEDIA_FAILED, "error": why, "next_try_at": None}

    @staticmethod
    def _retry(claim: Claim, now: datetime) -> dict:
        delay = BACKOFF[min(claim.attempts, len(BACKOFF)) - 1]
        return {"status": MEDIA_PENDING, "next_try_at": now + timedelta(seconds=delay)}

    def _settle(self, claim: Claim, values: dict) -> str | None:
        """Record the outcome, if the claim still holds (else drop what it wrote); a recording
        lost for good asks its sender again, in the same transaction."""
        asked = None
        with self.db.session() as session:
            won = session.execute(
                update(TicketAttachment).where(TicketAttachment.id == claim.id,
                                               TicketAttachment.status == MEDIA_PENDING,
                                               TicketAttachment.attempts == claim.attempts)
                .values(**values).execution_options(synchronize_session=False)).rowcount
            if won and values["status"] in (MEDIA_FAILED, MEDIA_EXPIRED) and self.outbox:
                asked = ask_again(session, self._pusher(session), claim.id, utcnow(),
                                  self.settings.zone)
        if asked is not None:
            self.outbox.after_commit([asked])
        if not won:   # it outlived its lease and another attempt (or the sweep) took over
            self.store.remove(stored_files(values.get("file_name")))
            logger.warning("attachment %s: attempt %d lost its claim", claim.id, claim.attempts)
            return None
        if values["status"] == MEDIA_SAVED:
            logger.info("attachment %s: %s saved (%d bytes)", claim.id, claim.kind,
                        values["size"])
        return values["status"]

    def _pusher(self, session):
        """push(openid, template, *, campaign, kind, **values) into `session`'s transaction."""
        def push(openid, template, *, campaign, kind, **values):
            return self.outbox.push(session, openid, template, values, campaign=campaign,
                                    kind=kind, now=utcnow())
        return push
