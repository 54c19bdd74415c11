"""Per-user dialog state in Redis, expiring after the dialog timeout."""
from __future__ import annotations

import json
import logging

from bot.kv import RedisDown

logger = logging.getLogger(__name__)


class DialogStore:
    """get/set/clear one JSON document per openid, with a TTL refreshed on each write."""

    def __init__(self, redis_client, ttl_seconds: int):
        self.redis = redis_client
        self.ttl = ttl_seconds

    def _key(self, openid: str) -> str:
        return f"yinling:dialog:{openid}"

    def get(self, openid: str) -> dict | None:
        """The user's dialog state, or None (no dialog, expired, or Redis unreachable)."""
        try:
            raw = self.redis.get(self._key(openid))
        except RedisDown:
            logger.warning("dialog state unavailable (Redis down) for %s", openid)
            return None
        return json.loads(raw) if raw else None

    def set(self, openid: str, state: dict) -> None:
        """Store the state for the dialog timeout."""
        try:
            self.redis.set(self._key(openid), json.dumps(state, ensure_ascii=False), ex=self.ttl)
        except RedisDown:
            logger.warning("dialog state not saved (Redis down) for %s", openid)

    def clear(self, openid: str) -> None:
        """Leave any dialog."""
        try:
            self.redis.delete(self._key(openid))
        except RedisDown:
            logger.warning("dialog state not cleared (Redis down) for %s", openid)
