"""Subscription notices a user accepted (订阅通知, PRODUCT.md 7.4)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow

ACCEPT, REJECT = "accept", "reject"


class Subscription(Base):
    """What one user said to one subscription-notice template, from WeChat's events.

    Whether the template is long-term or one-time is set in the WeChat console and mirrored in
    config/templates.yaml (`term`); it is read there when sending, not stored here, so that a
    corrected config applies to acceptances already recorded. `remaining` counts one-time
    acceptances not yet used: each accepted pop-up allows one notice.
    """

    __tablename__ = "subscription"
    __table_args__ = (UniqueConstraint("openid", "template_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    openid: Mapped[str] = mapped_column(String(64), index=True)
    template_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default=ACCEPT)   # accept | reject
    remaining: Mapped[int] = mapped_column(default=0)
    # Where it was last answered: PopupScene 1 (a web page) / 2 (an article), `settings` for
    # WeChat's notice settings, `bizsend` for a 43101 answer to a send.
    source: Mapped[str | None] = mapped_column(String(16))
    accepted_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
