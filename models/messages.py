"""Inbound messages (the exactly-once record), replay guard, and outbound deliveries."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class InboundMessage(Base):
    """Every message and event WeChat delivered, recorded before it is handled."""

    __tablename__ = "inbound_message"
    # A user's messages newest first (their last texts, on every message that reads them)
    # straight from the index, however many they sent: also serves any lookup by openid.
    __table_args__ = (Index("ix_inbound_message_openid_id", "openid", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(255), unique=True)
    openid: Mapped[str] = mapped_column(String(64))
    msg_type: Mapped[str] = mapped_column(String(32))
    event: Mapped[str | None] = mapped_column(String(64))
    content: Mapped[str | None] = mapped_column(Text)
    raw: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="processing")
    reply: Mapped[str | None] = mapped_column(Text)
    reply_mode: Mapped[str | None] = mapped_column(String(16))
    # How the message was understood (`党费`, `kind`, `thread`, `not_understood`, …): read by
    # the understanding benchmark, and by operators asking what people say that we miss.
    understood: Mapped[str | None] = mapped_column(String(48))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    handled_at: Mapped[datetime | None]


class WebhookNonce(Base):
    """(timestamp, nonce) pairs seen recently, with the hash of the body they signed."""

    __tablename__ = "webhook_nonce"
    __table_args__ = (UniqueConstraint("timestamp", "nonce"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    timestamp: Mapped[int]
    nonce: Mapped[str] = mapped_column(String(64))
    body_sha: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Delivery(Base):
    """One outbound message to one recipient; unique per (campaign, recipient)."""

    __tablename__ = "delivery"
    __table_args__ = (
        UniqueConstraint("campaign", "openid"),
        Index("ix_delivery_status_not_before", "status", "not_before"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign: Mapped[str] = mapped_column(String(128))
    openid: Mapped[str] = mapped_column(String(64), index=True)
    template: Mapped[str] = mapped_column(String(128))
    body: Mapped[str] = mapped_column(Text)
    # The kind of push (bot/pushkinds.py) and its named facts: what a template message or a
    # subscription notice shows when the chat window is closed (config/templates.yaml).
    push_kind: Mapped[str | None] = mapped_column(String(32))
    facts: Mapped[dict | None] = mapped_column(JSON)
    # pending -> sending -> sent | sandbox | failed | undeliverable | cancelled
    # (sending -> pending again for a retry, a quiet-hours hold, or a worker that died)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    kind: Mapped[str] = mapped_column(String(16), default="reply")  # reply | scheduled | bulk
    channel: Mapped[str | None] = mapped_column(String(16))  # cs | template | subscribe
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    not_before: Mapped[datetime | None]
    # pending: no sweep before this (the enqueue grace, or how long a worker may keep it
    # unclaimed); sending: the longest its worker may take (from the claim).
    lease_until: Mapped[datetime | None]
    # The worker holding the row: pending = taken from the queue, sending = claimed. When that
    # worker's heartbeat (DeliveryWorker) stops, the sweeper takes the row over.
    worker: Mapped[str | None] = mapped_column(String(64))
    wx_msg_id: Mapped[str | None] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    # TEMPLATESENDJOBFINISH / subscribe_msg_sent_event: WeChat's final word on a template
    # message or subscription notice (success / failed:…).
    receipt: Mapped[str | None] = mapped_column(String(64))
    receipt_at: Mapped[datetime | None]


class DeliveryWorker(Base):
    """A process that delivers, beating every couple of seconds while it lives."""

    __tablename__ = "delivery_worker"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)   # host:pid:random
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    beat_at: Mapped[datetime] = mapped_column(default=utcnow)


class JobRun(Base):
    """One firing of a scheduled job, keyed (job, scheduled time): fired once, caught up once."""

    __tablename__ = "job_run"
    __table_args__ = (UniqueConstraint("job", "scheduled_for"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(64))
    scheduled_for: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="running")  # running | done | failed
    runner: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    count: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
