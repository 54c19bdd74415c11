"""Per-user dialog state, kept on the follower row with the dialog timeout.

Every message already locks and updates its follower row, so the state costs no extra round
trip there, one user's steps run in order under that lock, and a Redis outage cannot lose a
dialog at either edge: a report begun before Redis goes and finished after it returns empty
is submitted (issue 13, item 3).
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta


class DialogStore:
    """get/set/clear one JSON document per follower, expiring after the dialog timeout."""

    def __init__(self, ttl_seconds: int):
        self.ttl = ttl_seconds

    def get(self, follower, now: datetime) -> dict | None:
        """The follower's dialog state, or None (no dialog, or timed out)."""
        if follower is None or not follower.dialog or not follower.dialog_until:
            return None
        return json.loads(follower.dialog) if follower.dialog_until > now else None

    def set(self, follower, state: dict, now: datetime) -> None:
        """Keep the state for the dialog timeout, from `now`."""
        if follower is not None:
            follower.dialog = json.dumps(state, ensure_ascii=False)
            follower.dialog_until = now + timedelta(seconds=self.ttl)

    def clear(self, follower) -> None:
        """Leave any dialog (no write when there was none)."""
        if follower is not None and (follower.dialog or follower.dialog_until):
            follower.dialog = follower.dialog_until = None
