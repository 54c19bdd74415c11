"""Redis connection: the real server from REDIS_URL, or an in-process stand-in."""
from __future__ import annotations

import logging

import redis

logger = logging.getLogger(__name__)

# Every Redis failure the app degrades around (Redis is the fast path, never the authority).
RedisDown = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def connect(url: str, server=None) -> redis.Redis:
    """Return a client without decode_responses (RQ needs bytes); stand-in when url is empty."""
    if url:
        return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2,
                                    health_check_interval=30)
    import fakeredis

    logger.warning("REDIS_URL is unset: using an in-process Redis stand-in "
                   "(fine for one process; set REDIS_URL for several)")
    return fakeredis.FakeRedis(server=server or fakeredis.FakeServer())
