"""Redis connection: the real server from REDIS_URL, or an in-process stand-in."""
from __future__ import annotations

import logging
import threading
import time

import redis

logger = logging.getLogger(__name__)

# Every Redis failure the app degrades around (Redis is the fast path, never the authority).
RedisDown = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
# On the webhook's path a healthy Redis answers in a millisecond: a frozen one must cost a
# fraction of WeChat's 5 s, not the 2 s other users of Redis may wait.
HOT_PATH_TIMEOUT = 0.25
BREAKER_COOLDOWN = 5.0  # after a failure, the hot path leaves Redis alone this long


def connect(url: str, server=None) -> redis.Redis:
    """Return a client without decode_responses (RQ needs bytes); stand-in when url is empty."""
    if url:
        return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2,
                                    health_check_interval=30)
    import fakeredis

    logger.warning("REDIS_URL is unset: using an in-process Redis stand-in "
                   "(fine for one process; set REDIS_URL for several)")
    return fakeredis.FakeRedis(server=server or fakeredis.FakeServer())


def hot_path_client(client, timeout: float = HOT_PATH_TIMEOUT):
    """A client to the same server as `client`, with short timeouts (the stand-in as is)."""
    if type(client).__module__.startswith("fakeredis") or not isinstance(client, redis.Redis):
        return client
    pool = client.connection_pool
    kwargs = {**pool.connection_kwargs, "socket_timeout": timeout,
              "socket_connect_timeout": timeout}
    return redis.Redis(connection_pool=redis.ConnectionPool(
        connection_class=pool.connection_class, **kwargs))


class Breaker:
    """Stops calling a Redis that just failed, for a while: a frozen or vanished server costs
    the hot path one short timeout per cooldown, not one per call."""

    def __init__(self, cooldown: float = BREAKER_COOLDOWN):
        self.cooldown = cooldown
        self._open_until = 0.0
        self._lock = threading.Lock()

    def call(self, fn, *args, **kwargs):
        """fn(*args, **kwargs), or a ConnectionError at once while the breaker is open."""
        if time.monotonic() < self._open_until:
            raise redis.exceptions.ConnectionError("Redis left alone after a failure")
        try:
            return fn(*args, **kwargs)
        except RedisDown:
            with self._lock:
                if time.monotonic() >= self._open_until:
                    logger.warning("Redis failed on the hot path: left alone for %.0f s",
                                   self.cooldown)
                self._open_until = time.monotonic() + self.cooldown
            raise
