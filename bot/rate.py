"""The account's sending rate and daily quota: what WeChat allows the whole account, shared
by every worker process (PRODUCT.md 7.4).

`SendRate` is a token bucket in Redis — one script call per message, timed by Redis's own
clock, so every process draws from the same bucket. While Redis is unreachable each process
takes its share: the rate divided by the delivering processes alive in `delivery_worker`.
`quota_back_at` says when a daily quota (45009) returns: the next reset hour, and for
scheduled and bulk pushes not before quiet hours end.
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from bot.channel import held_until
from bot.kv import RedisDown
from models import utcnow
from models.messages import DeliveryWorker

logger = logging.getLogger(__name__)
KEY = "yinling:wechat:send-rate"
ALIVE = timedelta(seconds=8)     # a delivering process that beat this recently counts
RECOUNT = 10.0                   # seconds between counts of the live processes
# Take one token, or reserve the next one: returns how long the caller waits (seconds).
TAKE = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = math.min(burst, (tonumber(b[1]) or burst) + (now - (tonumber(b[2]) or now)) * rate)
tokens = tokens - 1
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('EXPIRE', KEYS[1], 60)
if tokens >= 0 then return '0' end
return tostring(-tokens / rate)
"""


class SendRate:
    """Paces sends to `rate` messages a second for the whole account (0: no limit)."""

    def __init__(self, rate: float, redis=None, db=None):
        self.rate, self.burst = rate, max(1.0, rate)
        self.redis, self.db = redis, db
        self._script = redis.register_script(TAKE) if redis is not None and rate else None
        self._lock = threading.Lock()
        self._tokens, self._at = self.burst, time.monotonic()
        self._share, self._counted = 1, float("-inf")

    def wait(self) -> float:
        """Block until this process may send one message; how long it waited."""
        if not self.rate:
            return 0.0
        pause = self._shared() if self._script is not None else None
        if pause is None:
            pause = self._local(self.rate / self._processes())
        if pause > 0:
            time.sleep(pause)
        return pause

    def _shared(self) -> float | None:
        """The wait the shared bucket asks for, or None when Redis is unreachable."""
        try:
            return float(self._script(keys=[KEY], args=[self.rate, self.burst]))
        except RedisDown:
            return None

    def _local(self, rate: float) -> float:
        """This process's own bucket at `rate` (Redis unreachable, or none configured)."""
        with self._lock:
            now = time.monotonic()
            # A clock moved back (time travel in tests) must not owe hours of tokens.
            elapsed = max(0.0, now - self._at)
            self._tokens = min(self.burst, self._tokens + elapsed * rate) - 1
            self._at = now
            return 0.0 if self._tokens >= 0 else -self._tokens / rate

    def _processes(self) -> int:
        """How many delivering processes share the account's rate (1 without a database)."""
        if self.db is None or time.monotonic() - self._counted < RECOUNT:
            return self._share
        self._counted = time.monotonic()
        try:
            with self.db.engine.connect() as conn:
                alive = conn.scalar(select(func.count()).select_from(DeliveryWorker).where(
                    DeliveryWorker.beat_at > utcnow() - ALIVE))
            self._share = max(1, int(alive or 0))
        except (DBAPIError, PoolTimeout):  # the database may be away too: keep the last count
            logger.warning("live delivering processes not counted: pacing by the last count")
        return self._share


def quota_back_at(kind: str, now: datetime, settings) -> datetime:
    """When WeChat's daily quota (45009) returns: the next reset hour, local time; scheduled
    and bulk pushes wait on to the end of quiet hours if that falls inside them."""
    local = now.astimezone(settings.zone)
    back = local.replace(hour=settings.quota_reset_hour, minute=0, second=0, microsecond=0)
    if back <= local:
        back += timedelta(days=1)
    return held_until(kind, back, settings) or back
