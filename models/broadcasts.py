"""Group broadcasts (群发): who sent what to which group, when, and whether it was withdrawn."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow
from models.groups import BroadcastGroup


class Broadcast(Base):
    """One notice a group admin sent to a group; its deliveries share campaign `broadcast:<id>`.

    Nothing is ever deleted: `撤回群发` cancels the deliveries still pending and records who
    withdrew it and when.
    """

    __tablename__ = "broadcast"
    __table_args__ = (Index("ix_broadcast_group_id_created_at", "group_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("broadcast_group.id"))
    sender_openid: Mapped[str] = mapped_column(String(64), index=True)
    sender_cadre_id: Mapped[int | None] = mapped_column(ForeignKey("cadre.id"))
    content: Mapped[str] = mapped_column(Text)
    via: Mapped[str] = mapped_column(String(16), default="text")  # text | voice
    recipients: Mapped[int] = mapped_column(default=0)
    # When the deliveries may go out: the end of quiet hours, or None for at once.
    not_before: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(64))
    revoked_count: Mapped[int] = mapped_column(default=0)

    group: Mapped[BroadcastGroup] = relationship()

    @property
    def campaign(self) -> str:
        """The outbox campaign of this broadcast's deliveries."""
        return f"broadcast:{self.id}"
