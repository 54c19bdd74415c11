"""Delivery side: take committed Delivery rows and send them (sandbox sink in sandbox mode)."""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select, update

from models import Delivery, utcnow

logger = logging.getLogger(__name__)


class SandboxSender:
    """The last step in sandbox mode: record the message as delivered-to-sandbox."""

    channel = "sandbox"

    def send(self, delivery: Delivery) -> tuple[str, str | None]:
        """Return (status, error)."""
        logger.info("sandbox delivery %s to %s: %d chars", delivery.id, delivery.openid,
                    len(delivery.body))
        return "sandbox", None


def deliver_one(db, sender, delivery_id: int) -> str | None:
    """Claim one pending delivery, send it, record the outcome; returns the new status."""
    with db.session() as session:
        claimed = session.execute(
            update(Delivery).where(Delivery.id == delivery_id, Delivery.status == "pending")
            .values(status="sending", attempts=Delivery.attempts + 1)
        ).rowcount
    if not claimed:
        return None
    with db.session() as session:
        delivery = session.get(Delivery, delivery_id)
        status, error = sender.send(delivery)
        delivery.status, delivery.last_error = status, error
        delivery.channel = sender.channel
        if status in ("sent", "sandbox"):
            delivery.sent_at = utcnow()
        return status


class ThreadDispatcher:
    """Delivers in a background thread pool of the web process (no REDIS_URL)."""

    def __init__(self, db, sender, workers: int = 4):
        self.db = db
        self.sender = sender
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="deliver")

    def enqueue(self, ids) -> None:
        """Schedule the deliveries."""
        for delivery_id in ids:
            self.pool.submit(self._run, delivery_id)

    def _run(self, delivery_id: int) -> None:
        try:
            deliver_one(self.db, self.sender, delivery_id)
        except Exception:  # noqa: BLE001 - a background thread has nobody else to tell
            logger.exception("delivery %s failed", delivery_id)

    def pending_ids(self) -> list[int]:
        """Deliveries still waiting (used at start-up to pick up what a crash left)."""
        with self.db.session() as session:
            return list(session.scalars(select(Delivery.id).where(Delivery.status == "pending")))

    def shutdown(self) -> None:
        """Finish queued deliveries and stop."""
        self.pool.shutdown(wait=True)
