"""Per-user dialog state in Redis, expiring after the dialog timeout.

While Redis is unreachable the state lives in the database instead (table dialog_state),
written through the handler's own session, so a dialog in progress survives an outage: an
old comrade half-way through reporting a problem is not sent back to the menu.
"""
from __future__ import annotations

import json
import logging
from datetime import timedelta

from bot.kv import RedisDown
from models import utcnow
from models.messages import DialogState

logger = logging.getLogger(__name__)


class DialogStore:
    """get/set/clear one JSON document per openid, with a TTL refreshed on each write."""

    def __init__(self, redis_client, ttl_seconds: int):
        self.redis = redis_client
        self.ttl = ttl_seconds

    def _key(self, openid: str) -> str:
        return f"yinling:dialog:{openid}"

    def get(self, openid: str, session=None) -> dict | None:
        """The user's dialog state, or None (no dialog, or expired)."""
        try:
            raw = self.redis.get(self._key(openid))
        except RedisDown:
            logger.warning("dialog state read from the database (Redis down) for %s", openid)
            raw = self._db_get(session, openid)
        return json.loads(raw) if raw else None

    def set(self, openid: str, state: dict, session=None, ttl: int | None = None) -> None:
        """Store the state for the dialog timeout (or `ttl` seconds, for a question that
        arrives unasked, like the rating after a ticket is resolved)."""
        raw = json.dumps(state, ensure_ascii=False)
        ttl = ttl or self.ttl
        try:
            self.redis.set(self._key(openid), raw, ex=ttl)
        except RedisDown:
            logger.warning("dialog state kept in the database (Redis down) for %s", openid)
            self._db_set(session, openid, raw, ttl)

    def clear(self, openid: str, session=None) -> None:
        """Leave any dialog."""
        try:
            self.redis.delete(self._key(openid))
        except RedisDown:
            logger.warning("dialog state cleared in the database (Redis down) for %s", openid)
            self._db_set(session, openid, None)

    # ---- the database fallback ---------------------------------------------------------
    def _db_get(self, session, openid: str) -> str | None:
        if session is None:
            return None
        row = session.get(DialogState, openid)
        return row.state if row is not None and row.expires_at > utcnow() else None

    def _db_set(self, session, openid: str, raw: str | None, ttl: int | None = None) -> None:
        if session is None:
            logger.warning("no session to keep the dialog state of %s in", openid)
            return
        row = session.get(DialogState, openid)
        if raw is None:
            if row is not None:
                session.delete(row)
            return
        expires = utcnow() + timedelta(seconds=ttl or self.ttl)
        if row is None:
            session.add(DialogState(openid=openid, state=raw, expires_at=expires))
        else:
            row.state, row.expires_at = raw, expires
