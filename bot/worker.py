"""Getting deliveries to a delivering thread: the pool, the dispatchers, the sweeper, the worker.

Without REDIS_URL the process that pushes also delivers (ThreadDispatcher: a feeder thread and a
pool). With REDIS_URL pushes go to an RQ queue and `flask --app bot worker` delivers: RQ jobs
carry batches of delivery ids; a job hands its ids to this process's DeliveryPool and returns
once every id has a thread, so the next job's deliveries start while the last ones of this job
are still in flight and `delivery_concurrency` messages stay in flight over one pooled HTTP
client. RQ's SimpleWorker runs jobs in this process (no fork per job), which keeps the pool and
its connections alive between jobs. In both modes a sweeper re-enqueues what is due again, what
a stopped worker held (by its heartbeat, within seconds) and what no queue message carries.
"""
from __future__ import annotations

import logging
import queue
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from bot.delivery import Deliverer, Ready, sweep
from bot.kv import Breaker, RedisDown
from bot.rate import SendRate
from bot.wechat import make_client
from models import utcnow

logger = logging.getLogger(__name__)
POOL_KEY = "yinling.delivery_pool"


class _Everything:
    """The queue's contents when they cannot be read: requeue nothing for now."""

    def __contains__(self, _item) -> bool:
        return True


class Sweeper:
    """A thread that hands due and abandoned deliveries back to `enqueue` every few seconds.

    `heartbeat` (this process's) lets it judge other workers silent once its own beats go
    through; `queued()` returns the delivery ids the queue still carries."""

    def __init__(self, db, settings, enqueue, redis=None, clock=utcnow, heartbeat=None,
                 queued=None):
        self.db, self.settings, self.enqueue = db, settings, enqueue
        self.redis, self.clock = redis, clock
        self.heartbeat, self.queued = heartbeat, queued
        self.interval = settings.delivery_sweep_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._token = uuid.uuid4().hex

    def start(self) -> None:
        """Start sweeping (once)."""
        if self._thread is None:
            if self.heartbeat is not None:
                self.heartbeat.start()
            self._thread = threading.Thread(target=self._loop, name="sweeper", daemon=True)
            self._thread.start()

    def run_once(self) -> int:
        """One sweep (skipped while another process holds this interval's turn)."""
        if not self._my_turn():
            return 0
        judge = self.heartbeat is not None and self.heartbeat.steady()
        ids = sweep(self.db, self.settings, self.clock(), judge=judge,
                    queued=self._queued if self.queued is not None else None)
        if ids:
            logger.info("sweep: %d deliveries due again", len(ids))
            self.enqueue(ids)
        return len(ids)

    def _queued(self):
        try:
            return self.queued()
        except RedisDown:
            logger.warning("sweep: the delivery queue cannot be read; requeueing later")
            return _Everything()

    def _my_turn(self) -> bool:
        if self.redis is None:
            return True
        try:
            return bool(self.redis.set("yinling:delivery:sweep", self._token, nx=True,
                                       px=max(int(self.interval * 900), 50)))
        except RedisDown:
            return True  # the database conditions keep concurrent sweeps harmless

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except (SQLAlchemyError, *RedisDown):
                logger.exception("sweep failed; trying again in %ss", self.interval)
            self._stop.wait(self.interval)

    def stop(self) -> None:
        """Stop sweeping and wait for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


class DeliveryPool:
    """Deliveries on `size` threads (so at most `size` in flight) sharing one HTTP pool."""

    PREPARE = 8   # deliveries claimed together by a worker

    def __init__(self, deliverer: Deliverer, size: int):
        self.deliverer = deliverer
        # Room for `size` more waiting behind the `size` in flight keeps every thread busy
        # while the RQ worker fetches its next job.
        self.slots = threading.BoundedSemaphore(2 * size)
        self.batch = min(self.PREPARE, 2 * size)   # never wait for more slots than exist
        self.executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="deliver")

    def submit(self, ids, wait: bool = False) -> None:
        """Queue deliveries; wait=True (RQ workers) claims in batches and blocks when full."""
        ids = list(ids)
        if not wait:
            for delivery_id in ids:
                self.executor.submit(self._run, self.deliverer.deliver, delivery_id, False)
            return
        try:   # they name this worker from now on: if it dies they are queued again at once
            self.deliverer.take(ids)
        except SQLAlchemyError:
            logger.exception("could not take deliveries %s", ids[:10])
        for start in range(0, len(ids), self.batch):
            group = ids[start:start + self.batch]
            for _ in group:
                self.slots.acquire()
            ready = self._prepare(group)
            for item in ready:
                self.executor.submit(self._run, self.deliverer.send, item, True)
            for _ in range(len(group) - len(ready)):
                self.slots.release()

    def _prepare(self, group: list[int]) -> list[Ready]:
        try:
            return [r for r in self.deliverer.prepare(group) if not r.settled]
        except SQLAlchemyError:   # given back (or left to their lease): the sweeper retries
            logger.exception("could not claim deliveries %s", group)
            try:
                self.deliverer.release(group)
            except SQLAlchemyError:
                logger.warning("could not give back deliveries %s", group)
            return []

    def _run(self, step, item, holds_slot: bool) -> None:
        try:
            step(item)
        except Exception:  # noqa: BLE001 - a pool thread has nobody to tell; the sweeper retries
            logger.exception("delivery %s failed unexpectedly",
                             item.claim.id if isinstance(item, Ready) else item)
        finally:
            if holds_slot:
                self.slots.release()

    def shutdown(self) -> None:
        """Finish what is queued and stop."""
        self.executor.shutdown(wait=True)


class ThreadDispatcher:
    """No REDIS_URL: this process delivers on its own thread pool and sweeps up what is due.

    A feeder thread plays the RQ worker's part: it hands queued ids to the pool in claimed
    batches, so pushing never blocks the caller (the webhook) and the pool stays full.
    """

    def __init__(self, deliverer: Deliverer, settings):
        self.deliverer, self.settings = deliverer, settings
        self.waiting: queue.Queue = queue.Queue()
        self._queued: set[int] = set()   # ids in `waiting` (the sweeper leaves them there)
        self._queued_lock = threading.Lock()
        self._started = threading.Lock()
        self._closed = False
        self._fresh()

    def _fresh(self) -> None:
        """New pool, sweeper and feeder: a dispatcher shut down can start again."""
        self.pool = DeliveryPool(self.deliverer, self.settings.delivery_concurrency)
        self.sweeper = Sweeper(self.deliverer.db, self.settings, self.enqueue,
                               heartbeat=self.deliverer.heartbeat, queued=self.queued_ids)
        self.feeder = threading.Thread(target=self._feed, name="deliver-feed", daemon=True)

    def start(self) -> None:
        """Start feeding and sweeping (the first sweep picks up what a crash left)."""
        with self._started:
            if self._closed:   # the app is going away: pushes wait in the database
                return
            if not self.feeder.is_alive() and self.feeder.ident is None:
                self.feeder.start()
                self.sweeper.start()

    def enqueue(self, ids) -> None:
        """Deliver these committed deliveries soon (never blocks the caller)."""
        self.start()
        ids = list(ids)
        with self._queued_lock:
            self._queued.update(ids)
        self.waiting.put(ids)

    def queued_ids(self) -> set[int]:
        """The ids handed to this dispatcher that no delivery thread has taken yet."""
        with self._queued_lock:
            return set(self._queued)

    def _feed(self) -> None:
        while (ids := self.waiting.get()) is not None:
            with self._queued_lock:
                self._queued.difference_update(ids)
            try:
                self.pool.submit(ids, wait=True)
            except Exception:  # noqa: BLE001 - keep feeding; the sweeper retries these ids
                logger.exception("could not hand deliveries %s to the pool", ids[:10])

    def shutdown(self) -> None:
        """Stop sweeping, deliver what is queued, stop (a later enqueue starts afresh)."""
        with self._started:
            self.sweeper.stop()
            if self.feeder.is_alive():
                self.waiting.put(None)
                self.feeder.join()
            self.pool.shutdown()
            self.deliverer.heartbeat.stop()
            self._fresh()

    def close(self) -> None:
        """Shut down for good: a push from a thread still running afterwards starts no new
        sweeper (it would outlive the app); its row waits for the next process's sweep."""
        with self._started:
            self._closed = True
        self.shutdown()


QUEUE_NAME = "yinling-delivery"


class RQDispatcher:
    """REDIS_URL set: delivery ids go to an RQ queue that `flask --app bot worker` serves."""

    def __init__(self, deliverer: Deliverer, settings, redis, breaker):
        from rq import Queue

        self.deliverer, self.settings, self.redis = deliverer, settings, redis
        self.queue = Queue(QUEUE_NAME, connection=redis)
        self.breaker = breaker

    def start(self) -> None:
        """Nothing to start: workers sweep."""

    def enqueue(self, ids) -> None:
        """One RQ job per batch of ids; if Redis is down the sweeper finds them later."""
        ids = list(ids)
        size = self.settings.delivery_batch_size
        jobs = [self.queue.prepare_data("bot.worker.deliver_batch", args=(ids[i:i + size],),
                                        result_ttl=0, timeout=3600,
                                        description=f"deliver {len(ids[i:i + size])}")
                for i in range(0, len(ids), size)]
        try:
            self.breaker.call(self.queue.enqueue_many, jobs)
        except RedisDown:
            logger.warning("delivery queue unavailable: %d deliveries wait for the sweeper",
                           len(ids))

    def queued_ids(self) -> set[int]:
        """The delivery ids the queue's jobs still carry (no worker has started them)."""
        from rq.job import Job

        ids: set[int] = set()
        for job in Job.fetch_many(self.queue.get_job_ids(), connection=self.redis):
            try:
                if job is not None and job.func_name == "bot.worker.deliver_batch":
                    ids.update(job.args[0])
            except Exception:  # noqa: BLE001 - unreadable: its ids are queued again, harmless
                logger.warning("sweep: cannot read queued job %s", job.id)
        return ids

    def shutdown(self) -> None:
        """Nothing to stop in this process."""

    close = shutdown


def pool_has_room(db, threads: int) -> bool:
    """Can each of `threads` delivery threads keep its own database connection?

    Not worth it on SQLite (no network round trip to save); elsewhere only if the engine's
    pool leaves room for the sweeper and the worker itself.
    """
    pool = db.engine.pool
    room = pool.size() + getattr(pool, "_max_overflow", 0) if hasattr(pool, "size") else 0
    return db.engine.dialect.name != "sqlite" and threads + 4 <= room


def make_dispatcher(settings, db, redis, render, hot=None):
    """RQ when REDIS_URL is set, else a thread pool in this process; sandbox or real client.
    `hot` = (client, breaker) for enqueueing from the webhook's path."""
    # Sandbox mode reaches no WeChat account: nothing to pace.
    rate = 0 if settings.sandbox else settings.send_rate
    pace = SendRate(rate, redis if settings.redis_url else None, db)
    deliverer = Deliverer(db, settings, make_client(settings, redis), render, pace=pace)
    if settings.redis_url:
        client, breaker = hot or (redis, Breaker())
        return RQDispatcher(deliverer, settings, client, breaker)
    return ThreadDispatcher(deliverer, settings)


class WorkerUnavailable(RuntimeError):
    """The worker cannot run with this configuration (the message says why)."""


def deliver_batch(ids: list[int]) -> int:
    """RQ job: deliver these ids on this worker's pool; returns how many were handed over."""
    current_app.extensions[POOL_KEY].submit(ids, wait=True)
    return len(ids)


def run_worker(app, *, burst: bool = False, concurrency: int | None = None) -> None:
    """Serve the delivery queue until stopped (or until it is empty, with burst)."""
    from rq import Queue, SimpleWorker

    from bot.media import MEDIA_QUEUE

    yl = app.extensions["yinling"]
    if not yl.settings.redis_url:
        raise WorkerUnavailable("REDIS_URL is not set: without it the web process delivers "
                                "in a background thread and no worker is needed")
    size = concurrency or yl.settings.delivery_concurrency
    deliverer = yl.dispatcher.deliverer
    deliverer.keep_connections = pool_has_room(yl.db, size)
    pool = DeliveryPool(deliverer, size)
    app.extensions[POOL_KEY] = pool
    # Starting beats at once; once steady, the first sweeps take over what a dead worker held.
    sweeper = Sweeper(yl.db, yl.settings, yl.dispatcher.enqueue, redis=yl.redis,
                      heartbeat=deliverer.heartbeat, queued=yl.dispatcher.queued_ids)
    rq_queue = Queue(QUEUE_NAME, connection=yl.redis)
    # Tickets' photos and voice (bot/media.py) too, after the deliveries waiting.
    media_queue = Queue(MEDIA_QUEUE, connection=yl.redis)
    worker = SimpleWorker([rq_queue, media_queue], connection=yl.redis,
                          log_job_description=False)
    logger.info("delivery worker %s: %d in flight, queue %s", worker.name, size, QUEUE_NAME)
    sweeper.start()
    try:
        with app.app_context():
            worker.work(burst=burst, logging_level="WARNING")
    finally:
        sweeper.stop()
        pool.shutdown()
        deliverer.close()
        logger.info("delivery worker %s stopped", worker.name)
