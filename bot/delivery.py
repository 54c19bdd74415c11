"""Worker side of the outbox: claim a Delivery, choose its channel, send it, record the outcome.

The database is the authority. A worker takes the rows of a queue message (they name it) and
claims each one (pending -> sending, with a lease from the claim) before sending. Every worker
beats in `delivery_worker` every HEARTBEAT_SECONDS; a sweeper puts rows back in the queue when
they are due again (retry back-off, quiet hours), when the worker holding them has stopped
beating (it died: taken over within seconds, even while the lease runs), when their lease ran
out (a row being sent: only if its worker is silent too), or when a pending row is neither
queued nor held by anyone past a short grace (Redis was unreachable at push time, or the
queue message was lost). A worker killed between WeChat's answer and the record can
therefore send that one message twice (at most the ones in flight); nothing is ever lost.
A live worker inside a slow WeChat call keeps beating: never taken over.
"""
from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, delete, false, insert, or_, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from bot import subscriptions
from bot.channel import cs_window, held_until, window_rule
from bot.inbox import unavailable
from bot.notices import fallback_facts, load_notices, template_data
from bot.pages import page_url
from bot.rate import SendRate, quota_back_at
from bot.text import WECHAT_TEXT_LIMIT, cut_to_bytes
from bot.wechat import Outcome, Result
from models import Delivery, Follower, utcnow
from models.messages import DeliveryWorker

logger = logging.getLogger(__name__)

DELIVERED = ("sent", "sandbox")   # statuses that count as delivered (for reports)
WINDOW_SPENT = 99  # cs_sent_since_inbound after WeChat said the window is closed or used up
# Every delivering process beats this often; one silent for SILENT_SECONDS is gone (clocks of
# the hosts must agree within a couple of seconds). A process judges others only after its own
# beats have gone through for STEADY_SECONDS: after a database outage every live worker gets
# the time to beat again before anyone's rows are taken over.
QUOTA_SPENT_TODAY = 45009   # WeChat's daily API quota is reached
HEARTBEAT_SECONDS = 2.0
SILENT_SECONDS = 8.0
STEADY_SECONDS = 2 * HEARTBEAT_SECONDS
# A pushed (or re-queued) row is left to its queue message this long; after it, a row neither
# queued nor held by a worker is queued again (Redis was unreachable, the pusher died).
ENQUEUE_GRACE_SECONDS = 5.0
FORGET_WORKERS_AFTER = timedelta(days=1)


@dataclass
class Claim:
    """The fields of a claimed delivery that sending needs."""

    id: int
    openid: str
    body: str
    kind: str
    attempts: int
    push_kind: str | None = None
    facts: dict | None = None


@dataclass
class Ready:
    """A claimed delivery with its channel chosen, or settled without sending."""

    claim: Claim
    channel: str | None
    settled: str | None = None


def backoff(attempt: int, settings) -> timedelta:
    """Exponential back-off with 10% jitter: base, 2x base, 4x base… up to the cap."""
    seconds = min(settings.delivery_backoff_seconds * 2 ** (attempt - 1),
                  settings.delivery_backoff_max_seconds)
    return timedelta(seconds=seconds * random.uniform(0.9, 1.1))


def _b(name: str):
    return bindparam(name)


class SQL:
    """The hot-path statements, built once: building them per call cost more CPU than sending.

    Bind parameter names start with `b_` so they never clash with column names.
    """

    due = or_(Delivery.not_before.is_(None), Delivery.not_before <= _b("b_now"))
    claim = (update(Delivery)
             .where(Delivery.id.in_(bindparam("b_ids", expanding=True)),
                    Delivery.status == "pending", due)
             .values(status="sending", attempts=Delivery.attempts + 1,
                     lease_until=_b("b_lease"), worker=_b("b_worker"))
             .returning(Delivery.id, Delivery.openid, Delivery.body, Delivery.kind,
                        Delivery.attempts, Delivery.push_kind, Delivery.facts))
    windows = select(Follower.openid, Follower.subscribed, Follower.last_inbound_at,
                     Follower.last_inbound_kind, Follower.cs_sent_since_inbound).where(
        Follower.openid.in_(bindparam("b_openids", expanding=True)))
    reserve = (update(Follower)
               .where(Follower.openid == _b("b_openid"),
                      Follower.last_inbound_kind == _b("b_kind"),
                      Follower.cs_sent_since_inbound < _b("b_quota"))
               .values(cs_sent_since_inbound=Follower.cs_sent_since_inbound + 1))
    spend = (update(Follower).where(Follower.openid == _b("b_openid"))
             .values(cs_sent_since_inbound=WINDOW_SPENT))
    more = update(Follower).where(Follower.openid == _b("b_openid")).values(more_text=_b("b_text"))
    hold = (update(Delivery).where(Delivery.id == _b("b_id"))
            .values(status="pending", not_before=_b("b_until"), lease_until=None,
                    worker=None, attempts=Delivery.attempts - 1))
    retry = (update(Delivery).where(Delivery.id == _b("b_id"), Delivery.status == "sending")
             .values(status="pending", not_before=_b("b_until"), lease_until=None,
                     worker=None, channel=_b("b_channel"), last_error=_b("b_error")))
    # The daily quota is spent (45009): wait for it to come back; the attempt does not count.
    wait_quota = retry.values(attempts=Delivery.attempts - 1)
    take = (update(Delivery)
            .where(Delivery.id.in_(bindparam("b_ids", expanding=True)),
                   Delivery.status == "pending", due)
            .values(worker=_b("b_worker"), lease_until=_b("b_lease")))
    release = (update(Delivery)
               .where(Delivery.id.in_(bindparam("b_ids", expanding=True)),
                      Delivery.status == "pending", Delivery.worker == _b("b_worker"))
               .values(worker=None, lease_until=None))
    finish = (update(Delivery)
              .where(Delivery.id == _b("b_id"), Delivery.status == "sending",
                     Delivery.attempts == _b("b_attempts"))
              .values(status=_b("b_status"), channel=_b("b_channel"), last_error=_b("b_error"),
                      lease_until=None, sent_at=_b("b_sent_at"), wx_msg_id=_b("b_msgid")))


# Recording an accepted send is retried this many times (pausing 0.5 s, 1 s, …) before the
# delivery is left to the sweeper (which would send it again).
RECORD_TRIES = 5
RECORD_PAUSE = 0.5

class Heartbeat:
    """This process's row in `delivery_worker`, renewed every HEARTBEAT_SECONDS by a thread.

    The rows a worker takes or claims carry its id; the sweeper takes them over once the row
    has not been renewed for SILENT_SECONDS. In the database, not Redis: the database already
    decides who holds a delivery, and a Redis outage must not make every worker look dead.
    """

    def __init__(self, db, clock=utcnow):
        self.db, self.clock = db, clock
        self.id = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ok_since: float | None = None   # monotonic: every beat since went through
        self._last_ok = 0.0

    def start(self) -> None:
        """Beat now and from now on (idempotent; cheap once running)."""
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is not None:
                return
            self._stop = threading.Event()
            self.beat()
            thread = threading.Thread(target=self._loop, args=(self._stop,),
                                      name="deliver-heartbeat", daemon=True)
            thread.start()
            self._thread = thread

    def beat(self) -> bool:
        """Renew (or create) this process's row; False when the database did not take it."""
        now = self.clock()
        try:
            with self.db.engine.begin() as conn:
                renewed = conn.execute(update(DeliveryWorker).where(
                    DeliveryWorker.id == self.id).values(beat_at=now)).rowcount
                if not renewed:
                    conn.execute(insert(DeliveryWorker).values(id=self.id, started_at=now,
                                                               beat_at=now))
        except SQLAlchemyError as exc:
            if self._ok_since is not None:
                logger.warning("delivery worker %s cannot beat: %s", self.id,
                               type(exc).__name__)
            self._ok_since = None
            return False
        self._last_ok = time.monotonic()
        if self._ok_since is None:
            self._ok_since = self._last_ok
        return True

    def steady(self) -> bool:
        """Have this process's own beats gone through lately, for STEADY_SECONDS on end?

        Only then may it judge others silent: right after a database outage (or its own start)
        the live workers have not had the time to beat again."""
        since, now = self._ok_since, time.monotonic()
        return (since is not None and now - since >= STEADY_SECONDS
                and now - self._last_ok <= 2 * HEARTBEAT_SECONDS)

    def _loop(self, stop: threading.Event) -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            self.beat()

    def stop(self) -> None:
        """Stop beating and remove the row: what this process still holds is taken over."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is None:
                return
            self._stop.set()
            thread.join(timeout=10)
            self._ok_since = None
            try:
                with self.db.engine.begin() as conn:
                    conn.execute(delete(DeliveryWorker).where(DeliveryWorker.id == self.id))
            except SQLAlchemyError:
                logger.warning("delivery worker %s: could not remove its heartbeat", self.id)


class Deliverer:
    """Sends one delivery end to end; safe to call from many threads and processes at once."""

    def __init__(self, db, settings, client, render, clock=utcnow,
                 keep_connections: bool = False, pace: SendRate | None = None):
        self.db, self.settings, self.client, self.render = db, settings, client, render
        self.pace = pace or SendRate(0 if settings.sandbox else settings.send_rate, db=db)
        self.clock = clock
        # A dedicated worker keeps one database connection per delivery thread: checking one
        # out of the pool (and pinging it) for every transaction costs as much as the work.
        self.keep_connections = keep_connections
        self._local = threading.local()
        self._kept: list = []
        self._lock = threading.Lock()
        self._texts: dict = {}
        self.heartbeat = Heartbeat(db)

    def close(self) -> None:
        """Stop beating and close the connections kept by delivery threads (after the pool
        has stopped)."""
        self.heartbeat.stop()
        with self._lock:
            kept, self._kept = self._kept, []
        for conn in kept:
            conn.close()

    def _fixed_text(self, name: str, **values) -> str:
        """The template's fixed sentences, rendered once per process."""
        key = (name, tuple(sorted(values.items())))
        if key not in self._texts:
            self._texts[key] = self.render(name, **values)
        return self._texts[key]

    @contextmanager
    def _tx(self):
        """A connection whose statements each commit on their own.

        Every statement here is atomic by itself (a conditional UPDATE, or a read), so on
        PostgreSQL they run in autocommit: one round trip each instead of BEGIN, statement,
        COMMIT. SQLite keeps its BEGIN IMMEDIATE … COMMIT around the block.
        """
        if self.keep_connections:
            conn = getattr(self._local, "conn", None)
            if conn is None or conn.closed or conn.invalidated:
                conn = self._local.conn = self._autocommit(self.db.engine.connect())
                with self._lock:
                    self._kept.append(conn)
            with conn.begin():
                yield conn
            return
        with self.db.engine.connect() as conn:
            conn = self._autocommit(conn)
            with conn.begin():
                yield conn

    @staticmethod
    def _autocommit(conn):
        if conn.dialect.name == "sqlite":   # its BEGIN IMMEDIATE hook must keep working
            return conn
        return conn.execution_options(isolation_level="AUTOCOMMIT")

    def take(self, ids) -> int:
        """Hold the due pending ones among `ids` (a queue message's) until they are claimed.

        From here on they name this worker: if it dies before claiming them, the sweeper
        queues them again as soon as its heartbeat stops. The lease only bounds how long a
        live worker may keep them unclaimed."""
        self.heartbeat.start()
        now = self.clock()
        with self._tx() as conn:
            return conn.execute(SQL.take, {
                "b_ids": list(ids), "b_now": now, "b_worker": self.heartbeat.id,
                "b_lease": now + timedelta(seconds=self.settings.delivery_lease_seconds),
            }).rowcount

    def release(self, ids) -> None:
        """Give back rows taken but not claimed (claiming them failed): the sweeper requeues."""
        with self._tx() as conn:
            conn.execute(SQL.release, {"b_ids": list(ids), "b_worker": self.heartbeat.id})

    def deliver(self, delivery_id: int) -> str | None:
        """Deliver one due pending delivery; its new status, or None when it was not ours."""
        ready = self.prepare([delivery_id])
        return self.send(ready[0]) if ready else None

    def prepare(self, ids) -> list[Ready]:
        """Claim the due ones among `ids` and decide each one's channel, in one go.

        Held (quiet hours) and skipped (unsubscribed) deliveries are settled here; the others
        come back ready to send. Claiming a batch costs the same two round trips as one.
        """
        self.heartbeat.start()   # before the transaction (SQLite: one writer at a time)
        now = self.clock()
        with self._tx() as conn:
            claims = self._claim(conn, list(ids), now)
            if not claims:
                return []
            windows = {row.openid: row for row in conn.execute(
                SQL.windows, {"b_openids": sorted({c.openid for c in claims})})}
            ready = []
            for claim in claims:
                follower = windows.get(claim.openid)
                settled = self._hold_or_skip(conn, claim, follower, now)
                channel = None if settled else self._choose(conn, claim, follower, now)
                ready.append(Ready(claim, channel, settled))
        return ready

    def send(self, ready: Ready) -> str:
        """Send a prepared delivery and record the outcome; returns the new status."""
        if ready.settled:
            return ready.settled
        return self._send(ready.claim, ready.channel, self.clock())

    # ---- before sending ------------------------------------------------------------------
    def _claim(self, conn, ids: list[int], now: datetime) -> list[Claim]:
        lease = now + timedelta(seconds=self.settings.delivery_lease_seconds)
        rows = conn.execute(SQL.claim, {"b_ids": ids, "b_now": now, "b_lease": lease,
                                        "b_worker": self.heartbeat.id})
        return sorted((Claim(*row) for row in rows), key=lambda c: c.id)

    def _hold_or_skip(self, conn, claim: Claim, follower, now: datetime) -> str | None:
        """Quiet hours hold scheduled and bulk pushes; unsubscribed users are skipped."""
        until = held_until(claim.kind, now, self.settings)
        if until is not None:
            conn.execute(SQL.hold, {"b_id": claim.id, "b_until": until})
            logger.info("delivery %s to %s held for quiet hours until %s", claim.id,
                        claim.openid, until.isoformat(timespec="minutes"))
            return "held"
        if follower is not None and follower.subscribed is False:
            self._finish(conn, claim, "undeliverable", None, error="unsubscribed")
            logger.info("delivery %s skipped: %s has unsubscribed", claim.id, claim.openid)
            return "undeliverable"
        return None

    def _choose(self, conn, claim: Claim, follower, now: datetime) -> str:
        """'cs' when a chat-window slot could be reserved for this message, else 'template'."""
        is_open, _, _ = cs_window(follower, now, self.settings)
        if not is_open:
            return "template"
        _, quota = window_rule(follower.last_inbound_kind, self.settings)
        reserved = conn.execute(SQL.reserve, {"b_openid": claim.openid, "b_quota": quota,
                                              "b_kind": follower.last_inbound_kind}).rowcount
        return "cs" if reserved else "template"

    # ---- sending -------------------------------------------------------------------------
    def _send(self, claim: Claim, channel: str, now: datetime) -> str:
        note = ""
        if channel == "cs":
            text, rest = self._fit(claim.body)
            self.pace.wait()
            result = self.client.send_text(claim.openid, text)
            if result.ok and rest:
                self._update_follower(SQL.more, claim.openid, b_text=rest)
            if result.outcome not in (Outcome.WINDOW_CLOSED, Outcome.QUOTA_SPENT):
                return self._record(claim, "cs", result, now)
            self._update_follower(SQL.spend, claim.openid)
            note, channel = f"chat window: {result.reason}; ", "template"
        return self._closed_window(claim, now, note)

    def _closed_window(self, claim: Claim, now: datetime, note: str) -> str:
        """The chat window is closed: a subscription notice where the user accepted one for
        this kind, else the template message, else undeliverable with the reason."""
        notices = load_notices(self.settings)
        facts = claim.facts or fallback_facts(claim.body, now.astimezone(self.settings.zone))
        url = page_url(self.settings, claim.id)
        subscription = notices.subscription(claim.push_kind, self.settings)
        if subscription is not None:
            status, note = self._try_subscription(claim, subscription, facts, url, now, note)
            if status is not None:
                return status
        notice = notices.choose(claim.push_kind, self.settings)
        if notice is None:
            with self._tx() as conn:
                self._finish(conn, claim, "undeliverable", "template", error=note +
                             "chat window closed and no template configured "
                             "(WECHAT_TEMPLATE_NOTICE)")
            logger.warning("delivery %s to %s undeliverable: window closed, no template",
                           claim.id, claim.openid)
            return "undeliverable"
        template_id, entry = notice
        self.pace.wait()
        result = self.client.send_template(claim.openid, template_id,
                                           template_data(entry.fields, facts), url=url)
        if result.ok:
            # A template shows a few facts: the whole text waits for `更多`.
            self._update_follower(SQL.more, claim.openid, b_text=claim.body)
        return self._record(claim, "template", result, now, note)

    def _try_subscription(self, claim: Claim, subscription, facts: dict, url: str | None,
                          now: datetime, note: str) -> tuple[str | None, str]:
        """(status, note): the status when the subscription notice settled the delivery
        (sent, retry, failed…), None with a note saying why when the template should go."""
        template_id, sub = subscription
        with self._tx() as conn:
            taken = subscriptions.take(conn, claim.openid, template_id, sub.term)
        if not taken:
            return None, note + f"no subscription notice accepted ({sub.term}); "
        self.pace.wait()
        result = self.client.send_subscribe(claim.openid, template_id,
                                            template_data(sub.fields, facts, "subscribe"),
                                            url=url)
        if result.ok:
            self._update_follower(SQL.more, claim.openid, b_text=claim.body)
            return self._record(claim, "subscribe", result, now, note), note
        with self._tx() as conn:
            if result.code == subscriptions.USER_REFUSED:
                subscriptions.refused(conn, claim.openid, template_id, now)
            else:
                subscriptions.give_back(conn, claim.openid, template_id, sub.term)
        if result.outcome in (Outcome.REFUSED, Outcome.FATAL):
            # 43101, a value or template id WeChat would not take, or an account without the
            # subscription API: the template may still reach the user.
            log = logger.error if result.outcome is Outcome.FATAL else logger.warning
            log("delivery %s to %s: subscription notice refused (%s), the template goes "
                "instead", claim.id, claim.openid, result.reason)
            return None, note + f"subscription notice: {result.reason}; "
        return self._record(claim, "subscribe", result, now, note), note

    def _fit(self, body: str) -> tuple[str, str]:
        """A chat message within WeChat's 2048 bytes; the rest waits for `更多`, as in replies."""
        head, rest = cut_to_bytes(body, WECHAT_TEXT_LIMIT)
        if not rest:
            return body, ""
        hint = self._fixed_text("core/more_hint")
        head, rest = cut_to_bytes(body, WECHAT_TEXT_LIMIT - len(hint.encode()) - 2)
        return f"{head}\n{hint}", rest

    def _update_follower(self, statement, openid: str, **params) -> None:
        with self._tx() as conn:
            conn.execute(statement, {"b_openid": openid, **params})

    # ---- recording -----------------------------------------------------------------------
    def _record(self, claim: Claim, channel: str, result: Result, now: datetime,
                note: str = "") -> str:
        """Write the outcome of a send, trying again on a fresh connection when the database
        blinked meanwhile: WeChat has the message, so re-sending it would be a duplicate."""
        for attempt in range(1, RECORD_TRIES + 1):
            try:
                return self._record_once(claim, channel, result, now, note)
            except (DBAPIError, PoolTimeout) as exc:
                if not unavailable(exc) or attempt == RECORD_TRIES:
                    raise
                logger.warning("delivery %s: recording failed (%s), again on a fresh "
                               "connection (%d/%d)", claim.id, type(exc).__name__, attempt,
                               RECORD_TRIES)
                self._drop_kept_connection()
                time.sleep(RECORD_PAUSE * attempt)
        raise AssertionError("unreachable")

    def _drop_kept_connection(self) -> None:
        """Forget this thread's kept connection (it may be dead since a database blip)."""
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            try:
                conn.invalidate()
            except (DBAPIError, PoolTimeout):
                pass

    def _record_once(self, claim: Claim, channel: str, result: Result, now: datetime,
                     note: str = "") -> str:
        """Write the outcome of a send; every outbound message is logged with its openid."""
        outcome = result.outcome
        with self._tx() as conn:
            if outcome is Outcome.SENT:
                status = "sandbox" if result.sandbox else "sent"
                self._finish(conn, claim, status, channel, error=note or None, sent_at=now,
                             msgid=result.msgid)
            elif outcome is Outcome.UNSUBSCRIBED:
                status = "undeliverable"
                self._mark_unsubscribed(conn, claim.openid, now)
                self._finish(conn, claim, status, channel, error=note + result.reason)
            elif outcome is Outcome.RETRY_LATER and result.code == QUOTA_SPENT_TODAY:
                status = self._wait_for_quota(conn, claim, channel, note + result.reason, now)
            elif outcome is Outcome.RETRY_LATER:
                status = self._retry(conn, claim, channel, note + result.reason, now)
            else:
                status = "failed"
                self._finish(conn, claim, status, channel, error=note + result.reason)
        log = logger.error if outcome is Outcome.FATAL else logger.info
        log("out %s delivery %s via %s: %s%s", claim.openid, claim.id, channel, status,
            "" if result.ok else f" ({note}{result.reason})")
        return status

    def _retry(self, conn, claim: Claim, channel: str, reason: str, now: datetime) -> str:
        if claim.attempts >= self.settings.delivery_max_attempts:
            self._finish(conn, claim, "failed", channel,
                         error=f"gave up after {claim.attempts} attempts: {reason}")
            return "failed"
        when = now + backoff(claim.attempts, self.settings)
        when = held_until(claim.kind, when, self.settings) or when
        conn.execute(SQL.retry, {"b_id": claim.id, "b_until": when, "b_channel": channel,
                                 "b_error": f"attempt {claim.attempts}: {reason}"})
        return "retry"

    def _wait_for_quota(self, conn, claim: Claim, channel: str, reason: str,
                        now: datetime) -> str:
        """45009: the account's daily quota is spent. Not a failure: the delivery waits for
        the quota to come back (and, if scheduled or bulk, for quiet hours to end)."""
        when = quota_back_at(claim.kind, now, self.settings)
        conn.execute(SQL.wait_quota, {"b_id": claim.id, "b_until": when, "b_channel": channel,
                                      "b_error": f"daily quota spent, waits until "
                                                 f"{when.isoformat()}: {reason}"})
        return "retry"

    def _finish(self, conn, claim: Claim, status: str, channel: str | None,
                error: str | None = None, sent_at: datetime | None = None,
                msgid: str | None = None) -> None:
        done = conn.execute(SQL.finish, {
            "b_id": claim.id, "b_attempts": claim.attempts, "b_status": status,
            "b_channel": channel, "b_error": error, "b_sent_at": sent_at, "b_msgid": msgid})
        if not done.rowcount:
            logger.warning("delivery %s was taken over while sending (lease too short?)",
                           claim.id)

    def _mark_unsubscribed(self, conn, openid: str, now: datetime) -> None:
        """43004: the follower is inactive from now on (re-subscribing restores them)."""
        changed = conn.execute(update(Follower).where(Follower.openid == openid).values(
            subscribed=False, unsubscribed_at=now)).rowcount
        if changed:
            return
        try:   # a failed statement leaves no transaction to roll back (see _tx)
            conn.execute(Follower.__table__.insert().values(
                openid=openid, subscribed=False, unsubscribed_at=now))
        except IntegrityError:  # created meanwhile by the user's own message: mark it
            conn.execute(update(Follower).where(Follower.openid == openid).values(
                subscribed=False, unsubscribed_at=now))


# ---- finding work again ------------------------------------------------------------------
def sweep(db, settings, now: datetime | None = None, limit: int = 5000, *,
          judge: bool = False, queued=None) -> list[int]:
    """Deliveries to enqueue again; each is left to its new queue message for a short grace.

    - 'sending' rows whose worker stopped beating (`judge`: this process may tell, see
      Heartbeat.steady), or whose lease from the claim ran out while their worker is silent:
      pending again, or failed after too many attempts (WeChat may have had them: at most the
      ones in flight go twice); a worker that beats is never taken over mid-send;
    - pending rows a worker took from the queue and no longer holds (the same test): free;
    - free pending rows that are due, past their grace and not among `queued()`, the ids the
      queue still carries (a backlog is not queued twice): never queued because Redis was
      unreachable, their queue message lost, or the pusher died before queueing them.
    """
    now = now or utcnow()
    silent = now - timedelta(seconds=SILENT_SECONDS)
    live = select(DeliveryWorker.id).where(DeliveryWorker.beat_at >= silent)
    gone = (and_(Delivery.worker.is_not(None), Delivery.worker.not_in(live)) if judge
            else false())
    let_go = or_(Delivery.lease_until < now, gone)
    # A row being sent is taken over only from a worker that stopped beating: one that still
    # beats is inside a slow send (a token fetch, the pace, a record retried), and taking its
    # row over would send the message twice. Its lease counts once it is silent too.
    silent_holder = or_(Delivery.worker.is_(None), Delivery.worker.not_in(live))
    abandoned = (Delivery.status == "sending",
                 or_(gone, and_(Delivery.lease_until < now, silent_holder)))
    free = (Delivery.status == "pending", Delivery.worker.is_(None),
            or_(Delivery.not_before.is_(None), Delivery.not_before <= now),
            or_(Delivery.lease_until.is_(None), Delivery.lease_until < now))
    with db.engine.begin() as conn:
        conn.execute(update(Delivery).where(
            *abandoned, Delivery.attempts >= settings.delivery_max_attempts).values(
            status="failed", lease_until=None, worker=None,
            last_error="the worker stopped while sending, too many times"))
        lost = conn.execute(update(Delivery).where(*abandoned).values(
            status="pending", lease_until=None, worker=None,
            last_error="the worker stopped while sending; sent again")).rowcount
        dropped = conn.execute(update(Delivery).where(
            Delivery.status == "pending", Delivery.worker.is_not(None), let_go).values(
            worker=None, lease_until=None)).rowcount
        conn.execute(delete(DeliveryWorker).where(
            DeliveryWorker.beat_at < now - FORGET_WORKERS_AFTER))
        candidates = conn.execute(select(Delivery.id).where(*free).order_by(Delivery.id)
                                  .limit(limit)).scalars().all()
    if lost:
        logger.warning("sweep: %d deliveries were left sending by a stopped worker", lost)
    if dropped:
        logger.warning("sweep: %d deliveries taken by a stopped worker are queued again",
                       dropped)
    if candidates and queued is not None:
        waiting = queued()
        candidates = [i for i in candidates if i not in waiting]
    if not candidates:
        return []
    grace = now + timedelta(seconds=ENQUEUE_GRACE_SECONDS)
    with db.engine.begin() as conn:
        ids = conn.execute(update(Delivery).where(Delivery.id.in_(candidates), *free)
                           .values(lease_until=grace).returning(Delivery.id)).scalars().all()
    return sorted(ids)
