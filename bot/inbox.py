"""Exactly-once handling of inbound messages: DB key is the authority, Redis the fast path."""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from wechatpy import parse_message

from bot import wxevents
from bot.db import insert_missing
from bot.kv import Breaker, RedisDown
from bot.spool import user_of
from models import InboundMessage, utcnow

logger = logging.getLogger(__name__)
CACHE_TTL = 24 * 3600
WECHAT_GIVES_UP = 5.5   # seconds: past this WeChat has stopped waiting and will send again
CLAIM_STALE = 120.0     # a replay claim older than this belonged to a process that died
SPOOL_LOOK = 5.0        # seconds between looks at the spool folder from the hot path
ANSWER_BY = 4.5         # seconds after arrival: whatever happens, WeChat has an answer by then
SPOOL_ROOM = 0.5        # seconds kept for spooling and answering


class DatabaseUnavailable(Exception):
    """The database could not record a message (unreachable, or too slow for the budget)."""


def unavailable(exc: BaseException) -> bool:
    """Whether an error means the database is out of reach (not a rule it enforced)."""
    return isinstance(exc, PoolTimeout) or (isinstance(exc, DBAPIError)
                                            and not isinstance(exc, IntegrityError))


SUBSCRIBE_EVENTS = {e.upper() for e in (wxevents.POPUP, wxevents.CHANGE, wxevents.SENT)}
# The inbound row's column sizes: a message is recorded whatever its sender signed (a value
# too long for its column would make every try fail, and its spool file never clear).
KEY_LIMIT = InboundMessage.__table__.c.dedupe_key.type.length
OPENID_LIMIT = InboundMessage.__table__.c.openid.type.length
EVENT_LIMIT = InboundMessage.__table__.c.event.type.length

# The hot path's statements on the inbound row, built once (their cache key too: building a
# statement per message cost more CPU than running it). Recording is one INSERT … ON
# CONFLICT DO NOTHING RETURNING id (bot.db.insert_missing) in the handler's own transaction;
# the row lock (taking over a row a dead process left) and the answer are Core statements,
# so the row (raw XML and all) is never loaded into the ORM and its UPDATE skips the unit
# of work.
_T = InboundMessage.__table__
_LOCK = select(_T.c.status, _T.c.reply, _T.c.reply_mode, _T.c.openid) \
    .where(_T.c.id == bindparam("row_id")).with_for_update()
_SETTLE = update(_T).where(_T.c.id == bindparam("row_id")).values(
    status=bindparam("new_status"), reply=bindparam("new_reply"),
    reply_mode=bindparam("new_mode"), understood=bindparam("new_understood"),
    handled_at=bindparam("new_handled_at"))


@dataclass
class Handling:
    """The inbound row as its handler sees it: id and sender, what it holds, and the answer
    (`understood` the handler may set) that _answer writes back."""

    id: int
    openid: str
    status: str
    reply: str | None = None
    reply_mode: str | None = None
    understood: str | None = None
    handled_at: datetime | None = None


def _lock(session, row_id: int) -> Handling:
    """Lock the inbound row until the session's transaction ends; what it holds now."""
    status, reply, mode, openid = session.execute(_LOCK, {"row_id": row_id}).one()
    return Handling(row_id, openid, status, reply, mode)


def dedupe_key(data: dict) -> str:
    """MsgId for messages; sender+time+event+key for events (+MsgID for template callbacks,
    + a digest of the items for subscription-notice events); one longer than its column (a
    VIEW event's EventKey is the whole URL) keeps its start and a digest of the rest."""
    key = _key_of(data)
    if len(key) <= KEY_LIMIT:
        return key
    return f"{key[:KEY_LIMIT - 42]}#{hashlib.sha1(key.encode('utf-8')).hexdigest()}"


def _key_of(data: dict) -> str:
    if data.get("MsgType") != "event":
        if data.get("MsgId"):
            return f"msg:{data['MsgId']}"
        return f"nomsgid:{data.get('FromUserName')}:{data.get('CreateTime')}"
    key = ":".join(str(data.get(k) or "") for k in
                   ("FromUserName", "CreateTime", "Event", "EventKey"))
    event = str(data.get("Event", "")).upper()
    if event == "TEMPLATESENDJOBFINISH":
        key += f":{data.get('MsgID')}"
    elif event in SUBSCRIBE_EVENTS:   # two of one second differ by their <List> items
        key += f":{wxevents.content_key(data)}"
    return f"evt:{key}"


class _Race:
    """Decides, under a lock, whether the reply goes inline or (too late) through the outbox;
    with `defer`, what follows the commit and does not change the reply (the retry cache,
    the log line) runs as the handling's done-callback, normally on the handling thread
    while the request goes on with the reply."""

    def __init__(self, defer: bool = False):
        self.lock = threading.Lock()
        self.late = False
        self.inline = False
        self.defer = defer
        self.then = None

    def afterwards(self, fn) -> None:
        """Run fn now, or (deferred) once the request has been handed the reply."""
        if self.defer:
            self.then = fn
        else:
            fn()

    def settle(self, _future=None) -> None:
        """The deferred work, if any (a done-callback of the handling's future)."""
        then, self.then = self.then, None
        if then is not None:
            then()


class Inbox:
    """Records each message and replays the stored answer to retries.

    The record is the first statement of the transaction that handles the message, so a
    message costs one commit: a second copy (a retry, at any process) waits on the unique
    key until the first copy's transaction ends, then finds it handled and replays its
    answer, or records it afresh when the first died with its process (its rollback took
    the record along). A message answered `success` before its commit (past the budget) is
    first kept in the spool, so that `success` always means "we have it"."""

    def __init__(self, db, redis_client, handle, budget: float, workers: int = 8, *,
                 spool=None, record_limit: float = 2.0, breaker: Breaker | None = None):
        self.db = db
        self.redis = redis_client
        self.breaker = breaker or Breaker()
        self.handle = handle  # handle(session, message, inbound_row, late: bool) -> (reply, pushed)
        self.budget = budget
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="handle")
        self.spool = spool
        self.record_limit = record_limit
        # Recording has threads of its own: it must never wait behind slow handlers (that
        # wait would count against the record limit and spool messages needlessly).
        self.recorder = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="record")
        self._replayer: threading.Thread | None = None
        self._spool_looked = float("-inf")
        self._spool_users: set[str] = set()  # whose messages the last look saw spooled
        self._replayer_lock = threading.Lock()
        self._closed = threading.Event()

    # ---- entry point ---------------------------------------------------------------------
    def receive(self, message, data: dict, raw: str, arrived: float | None = None) -> str | None:
        """The reply text for this message, or None for `success`; the budget counts from
        `arrived` (time.monotonic() when the request came in), so every wait is in it."""
        key = dedupe_key(data)
        logger.info("in  %s %s%s (%d chars)", data.get("FromUserName"), data.get("MsgType"),
                    f"/{data['Event']}" if data.get("Event") else "",
                    len(_content_of(data) or ""))
        arrived = time.monotonic() if arrived is None else arrived
        cached = self._cached(key)
        if cached is not None:
            return cached or None
        if self._waits_in_spool(data):  # in order per user: after the ones spooled before
            return self._spooled(key, message, data, raw, arrived,
                                 DatabaseUnavailable("earlier messages of this user are spooled"))
        self.replay_later()
        return self._run(key, message, data, raw, arrived)

    def left(self, arrived: float) -> float:
        """Seconds of the reply budget left for a request that came in at `arrived`."""
        return max(0.0, self.budget - (time.monotonic() - arrived))

    def spare(self, arrived: float) -> float:
        """Seconds a check or the record may still take, so that the message could still be
        spooled and answered before WeChat stops waiting (at least 0.1)."""
        return max(0.1, ANSWER_BY - SPOOL_ROOM - (time.monotonic() - arrived))

    def within(self, seconds: float, fn, *args):
        """fn(*args) on a recording thread, or DatabaseUnavailable if it takes over
        `seconds` (it goes on in the background) or cannot reach the database."""
        future = self.recorder.submit(fn, *args)
        try:
            return future.result(timeout=seconds)
        except FutureTimeout as exc:
            raise DatabaseUnavailable(f"the database took over {seconds:.1f}s") from exc
        except (DBAPIError, PoolTimeout) as exc:
            if not unavailable(exc):
                raise
            raise DatabaseUnavailable(f"the database is unavailable: {type(exc).__name__}") \
                from exc

    def _run(self, key: str, message, data: dict, raw: str, arrived: float,
             row_id: int | None = None) -> str | None:
        """Record and handle the message in one transaction on a handling thread (or take
        over the row `row_id` a dead process left); within the budget the reply goes inline,
        past it `success` and the reply follows as a push."""
        race, recorded = _Race(defer=True), Future()
        future = self.pool.submit(self._once, key, message, data, raw, race, recorded, row_id)
        future.add_done_callback(race.settle)
        limit = min(self.record_limit, self.spare(arrived)) if self.spool is not None else None
        # Most messages are recorded and handled well within the limit and the budget: one
        # wait for both (one wake-up); else the record is waited for what is left of its limit.
        started = time.monotonic()
        wait((future,), timeout=self.left(arrived) if limit is None else
             min(limit, self.left(arrived)))
        try:
            row = _recorded(recorded, limit, time.monotonic() - started)
        except DatabaseUnavailable as exc:
            return self._spooled(key, message, data, raw, arrived, exc)
        if row is None:
            logger.info("retry of %s: replaying the stored answer", key)
            return self._await_existing(key, message, data, raw, arrived)
        try:
            return future.result(timeout=self.left(arrived))
        except FutureTimeout:
            if not _give_up(race):
                return future.result()
            logger.warning("%s ran past %.1fs: answering success, reply follows as a push",
                           key, self.budget)
            return self._trace(key, data, raw, arrived)
        except (DBAPIError, PoolTimeout) as exc:
            if not unavailable(exc):
                raise
            # The handler's transaction, the record with it, could not be saved.
            return self._spooled(key, message, data, raw, arrived, DatabaseUnavailable(
                f"the database went away while handling: {type(exc).__name__}"))

    def _trace(self, key: str, data: dict, raw: str, arrived: float) -> None:
        """Before answering `success` for a message whose record is not committed yet, keep
        it in the spool: should this process die before the commit, another replays it (and
        once the commit lands, the replay finds the row handled and forgets it)."""
        if self.spool is None:
            return None
        try:
            self.spool.write(key, data, raw, late=True)
        except OSError as exc:
            logger.error("%s could not be kept while it runs late (%s): holding the answer "
                         "so that WeChat retries", key, exc)
            time.sleep(max(0.0, WECHAT_GIVES_UP - (time.monotonic() - arrived)))
            return None
        self.replay_later(spooled=True)
        return None

    # ---- the spool: nothing is lost while the database is away -------------------------------
    def _spooled(self, key: str, message, data: dict, raw: str, arrived: float,
                 why: Exception) -> str | None:
        """Keep the message in the spool and say we have it; if even that fails, hold the
        answer past WeChat's wait so that WeChat sends the message again."""
        try:
            fresh = self.spool.write(key, data, raw)
        except OSError as exc:
            logger.error("%s could not be recorded (%s) nor spooled (%s): holding the answer "
                         "so that WeChat retries", key, why, exc)
            time.sleep(max(0.0, WECHAT_GIVES_UP - (time.monotonic() - arrived)))
            return None
        logger.warning("%s spooled (%s)%s", key, why,
                       "" if fresh else " (a retry of a spooled message)")
        self.replay_later(spooled=True)
        if not fresh and self.spool.kept_late(key):
            return None  # its first copy was answered `success`: so is the retry
        return self.handle.spooled_reply(message)

    def replay_later(self, *, spooled: bool = False) -> None:
        """Make sure a replayer runs while anything waits in the spool (one per process).

        On the hot path the spool folder is looked at once per SPOOL_LOOK seconds at most
        (another process on the host may have spooled), and at once after spooling here."""
        if self.spool is None or self._closed.is_set():
            return
        now = time.monotonic()
        if not spooled and now - self._spool_looked < SPOOL_LOOK:
            return
        self._spool_looked = now
        self._spool_users = self.spool.users()
        if not self.spool.pending():
            return
        with self._replayer_lock:
            if self._replayer is not None and self._replayer.is_alive():
                return
            self._replayer = threading.Thread(target=self._replay_until_empty, daemon=True,
                                              name="spool-replay")
            self._replayer.start()

    def _waits_in_spool(self, data: dict) -> bool:
        """Whether earlier messages of this sender wait in the spool (looked up on disk only
        when the last look at the folder saw some of theirs)."""
        if self.spool is None or not self._spool_users:
            return False
        user = user_of(str(data.get("FromUserName") or ""))
        if user not in self._spool_users:
            return False
        self._spool_users = self.spool.users()
        return user in self._spool_users

    def _replay_until_empty(self, pause: float = 1.0) -> None:
        while not self._closed.is_set() and self.spool.pending():
            if self.replay_spool() == 0:
                self._closed.wait(pause)

    def close(self) -> None:
        """Let the messages in hand finish, then stop (what is spooled stays for the next
        process)."""
        self._closed.set()
        with self._replayer_lock:
            replayer = self._replayer
        if replayer is not None:
            replayer.join(timeout=10)
        self.recorder.shutdown(wait=True)
        self.pool.shutdown(wait=True)

    def replay_spool(self) -> int:
        """Handle spooled messages in arrival order, each exactly once; how many."""
        self.spool.reclaim_stale(CLAIM_STALE)
        handled = 0
        for path in self.spool.pending():
            if self._closed.is_set():   # the app is going away: the rest waits
                break
            item = self.spool.claim(path)
            if item is None:
                continue
            try:
                settled = self._replay(item)
            except DatabaseUnavailable:
                settled = False  # still away
            except (DBAPIError, PoolTimeout) as exc:
                if not unavailable(exc):
                    raise
                settled = False  # still away
            if not settled:
                self.spool.release(item)  # try again later, in the same order
                return handled
            self.spool.done(item)
            handled += 1
        return handled

    def _replay(self, item) -> bool:
        """Record and handle one spooled message (its reply goes out as a push); False when
        it must wait: recorded already, still 'processing', and maybe by a live handler."""
        message = parse_message(item.raw)
        race, recorded = _Race(), Future()
        race.late = True
        self._once(item.key, message, item.data, item.raw, race, recorded)
        if recorded.result() is None:  # recorded already: handled late, a retry, a replay cut short
            with self.db.session() as session:
                row = session.scalar(select(InboundMessage).where(
                    InboundMessage.dedupe_key == item.key))
                if row.status != "processing":
                    return True  # handled: nothing more to do
                if not self._orphaned(session, row):
                    return False  # someone may be on it: look again once it is orphaned
                row_id = row.id
            self._once(item.key, message, item.data, item.raw, race, Future(), row_id)
        logger.info("replayed %s from the spool", item.key)
        return True

    # ---- recording -----------------------------------------------------------------------
    def _take(self, session, key: str, data: dict, raw: str,
              row_id: int | None) -> Handling | None:
        """In the session's transaction: record the message (None when it is recorded
        already: a retry waits here until the first copy's transaction ends), or lock the
        row `row_id` to take it over."""
        if row_id is not None:
            return _lock(session, row_id)
        openid = str(data.get("FromUserName", ""))[:OPENID_LIMIT]
        values = {"dedupe_key": key, "openid": openid,
                  "msg_type": str(data.get("MsgType", "unknown"))[:32],
                  "event": str(data.get("Event"))[:EVENT_LIMIT] if data.get("Event") else None,
                  "content": _content_of(data), "raw": raw, "status": "processing",
                  "received_at": utcnow()}   # all given: the statement compiles once
        new_id = insert_missing(session, InboundMessage, values, "dedupe_key",
                                InboundMessage.id)
        return None if new_id is None else Handling(new_id, openid, "processing")

    def _await_existing(self, key: str, message, data: dict, raw: str,
                        arrived: float) -> str | None:
        """Wait (within the budget) for the first copy to finish, then replay its answer.

        A row left 'processing' by a handler that died with its process (no commit, so no
        effect) is taken over: WeChat's retry is the last chance to handle that message.
        """
        deadline = arrived + self.budget
        while True:
            with self.db.session() as session:
                row = session.scalar(select(InboundMessage).where(
                    InboundMessage.dedupe_key == key))
                if row is not None and row.status in ("done", "failed"):
                    return row.reply if row.reply_mode == "inline" else None
                orphan = row is not None and self._orphaned(session, row)
            if orphan:
                logger.warning("%s was left unhandled by a dead process: taking it over", key)
                return self._run(key, message, data, raw, arrived, row.id)
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)

    def _orphaned(self, session, row) -> bool:
        """True when nobody is handling this 'processing' row (its handler's process died).

        A live handler holds the row lock (PostgreSQL) or the write lock (SQLite, where this
        read could not even start while it runs) for its whole transaction.
        """
        if (utcnow() - row.received_at).total_seconds() < self.budget:
            return False  # its handler may still be waiting for a pool thread
        if session.get_bind().dialect.name == "sqlite":
            return True
        return session.scalar(select(InboundMessage.id).where(
            InboundMessage.id == row.id, InboundMessage.status == "processing")
            .with_for_update(skip_locked=True)) is not None

    # ---- handling ------------------------------------------------------------------------
    def _once(self, key: str, message, data: dict, raw: str, race: _Race, recorded: Future,
              row_id: int | None = None) -> str | None:
        """Record (or take over) and handle the message in one transaction; `recorded` says
        as soon as the row is there (None: recorded before) or could not be written."""
        session = self.db.sessionmaker()
        try:
            try:
                row = self._take(session, key, data, raw, row_id)
            except BaseException as exc:
                session.rollback()
                if recorded.set_running_or_notify_cancel():
                    recorded.set_exception(_unavailable_as(exc))
                return None
            if not recorded.set_running_or_notify_cancel():
                # The request stopped waiting and spooled the message: the spool's replay
                # handles it, after this user's earlier spooled messages.
                session.rollback()
                return None
            recorded.set_result(row)
            if row is None or row.status != "processing":  # a retry took it over meanwhile
                session.rollback()
                return None if row is None else _stored(row)
            reply, pushed, late, row = self._handle_taken(session, row, key, message, data, raw,
                                                          race, row_id)
        finally:
            session.close()
        if row is None:
            return reply
        self.handle.after_commit(pushed)
        race.afterwards(lambda: self._answered(key, message.source, reply, late, row.understood))
        return reply

    def _answered(self, key: str, openid: str, reply: str | None, late: bool,
                  understood: str | None) -> None:
        """Keep the answer for retries (a late one as ''), and log it; a failure here loses
        nothing (the database dedupes retries), so it is logged, never raised."""
        try:
            self._cache(key, reply if not late else "")
        except Exception:  # noqa: BLE001 - a cache error must not reach the callback's caller
            logger.exception("reply cache write failed for %s", key)
        logger.info("out %s reply %s (%d chars)%s", openid,  # one line for both
                    "late" if late else "inline", len(reply or ""),
                    f", understood as {understood}" if understood else "")

    def _handle_taken(self, session, row: Handling, key: str, message, data: dict, raw: str,
                      race: _Race, row_id: int | None):
        """Run the handler on the recorded (or locked) row and commit its writes with the
        answer; (reply, pushed, late, row), row None when another copy took the message over
        after a failure."""
        reply, pushed, ok = self._run_handler(session, message, row, key)
        late = False
        if ok:  # the record, the answer and the handler's writes: one commit
            late = _decide(race)
            try:
                self._answer(session, row, reply, pushed, late, "done")
                session.commit()
            except Exception:  # noqa: BLE001 - the error boundary: its writes failed
                session.rollback()
                logger.exception("handler failed for %s: its changes could not be saved", key)
                reply, pushed, ok = self.handle.error_reply(), [], False
        if not ok:
            # The rollback took the record (or the row lock) with it: take it again, unless a
            # retry has taken the message over in between.
            row = self._take(session, key, data, raw, row_id)
            if row is None or row.status != "processing":
                session.rollback()
                return (None if row is None else _stored(row)), [], late, None
            late = _decide(race)
            self._answer(session, row, reply, pushed, late, "failed")
            session.commit()
        return reply, pushed, late, row

    def _answer(self, session, row, reply: str | None, pushed: list, late: bool,
                status: str) -> None:
        """Settle the row with its answer (a late answer also goes out as a push)."""
        if late and reply:
            pushed.append(self.handle.push_late(session, row, reply))
        row.status, row.reply, row.handled_at = status, reply, utcnow()
        row.reply_mode = "late" if late else "inline"
        session.execute(_SETTLE, {"row_id": row.id, "new_status": row.status,
                                  "new_reply": row.reply, "new_mode": row.reply_mode,
                                  "new_understood": row.understood,
                                  "new_handled_at": row.handled_at})

    def _run_handler(self, session, message, row, key: str):
        """Run the handler; on any error roll back its changes and answer kindly.

        Nothing of the failed transaction is touched before the rollback (after a failed
        flush any attribute read would raise again and leave the message unanswered). Its
        writes are flushed at the commit, after the row's answer (_SETTLE)."""
        try:
            reply, pushed = self.handle(session, message, row)
            return reply, pushed, True
        except Exception:  # noqa: BLE001 - the one error boundary around feature code
            session.rollback()
            logger.exception("handler failed for %s", key)
            return self.handle.error_reply(), [], False

    # ---- Redis fast path -----------------------------------------------------------------
    def _cache_key(self, key: str) -> str:
        return "yinling:inbox:" + hashlib.sha1(key.encode()).hexdigest()

    def _cached(self, key: str) -> str | None:
        try:
            raw = self.breaker.call(self.redis.get, self._cache_key(key))
        except RedisDown:
            return None
        return None if raw is None else raw.decode("utf-8")

    def _cache(self, key: str, reply: str | None) -> None:
        try:
            self.breaker.call(self.redis.set, self._cache_key(key),
                              (reply or "").encode("utf-8"), ex=CACHE_TTL)
        except RedisDown:
            logger.warning("reply cache unavailable (Redis down); the database still dedupes")


def _decide(race: _Race) -> bool:
    """Whether the answer is late (the request already answered `success`); once decided
    inline, the request waits for it."""
    with race.lock:
        race.inline = not race.late
        return race.late


def _give_up(race: _Race) -> bool:
    """Whether the request stops waiting (the answer will be late); False when the handler
    has just decided to answer inline, so that the request waits for it after all."""
    with race.lock:
        if not race.inline:
            race.late = True
        return race.late


def _recorded(recorded: Future, limit: float | None, waited: float = 0.0):
    """The recorded row (None: recorded before) once the handling thread has written it;
    DatabaseUnavailable when it could not, or not within `limit` seconds of which `waited`
    have passed (then it drops the message when it gets there: the spool has it)."""
    try:
        return recorded.result(timeout=None if limit is None else max(0.0, limit - waited))
    except FutureTimeout:
        if recorded.cancel():
            raise DatabaseUnavailable(f"recording took over {limit:.1f}s") from None
        return recorded.result()  # written just now


def _unavailable_as(exc: BaseException) -> BaseException:
    """A recording error as the request sees it: DatabaseUnavailable when the database is
    out of reach (the message goes to the spool), else the error itself."""
    if isinstance(exc, (DBAPIError, PoolTimeout)) and unavailable(exc):
        return DatabaseUnavailable(f"the database is unavailable: {type(exc).__name__}")
    return exc


def _stored(row) -> str | None:
    """The answer stored for a message handled before (None when it went as a push)."""
    return row.reply if row.reply_mode == "inline" else None


def abandoned(session, older_than) -> list[InboundMessage]:
    """Inbound rows left 'processing' since before `older_than` by a process that died, locked.

    A live handler holds its row's lock (PostgreSQL: SKIP LOCKED passes it by; SQLite: this
    session's write lock means no handler is mid-transaction). The caller marks them settled.
    """
    return list(session.scalars(
        select(InboundMessage).where(InboundMessage.status == "processing",
                                     InboundMessage.received_at < older_than)
        .order_by(InboundMessage.id).limit(500).with_for_update(skip_locked=True)))


def _content_of(data: dict) -> str | None:
    """The human content of a message, for the log table."""
    for field_name in ("Content", "Recognition", "PicUrl", "Label", "Url", "EventKey"):
        if data.get(field_name):
            return str(data[field_name])[:4000]
    return None
