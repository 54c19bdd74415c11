"""Broadcast groups of cadres, some of whom administer the group."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow


class BroadcastGroup(Base):
    """A named group of cadres that its admins can broadcast to."""

    __tablename__ = "broadcast_group"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    members: Mapped[list["GroupMember"]] = relationship(back_populates="group")


class GroupMember(Base):
    """A cadre in a group; `is_admin` lets them broadcast to it."""

    __tablename__ = "group_member"
    __table_args__ = (UniqueConstraint("group_id", "cadre_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("broadcast_group.id"), index=True)
    cadre_id: Mapped[int] = mapped_column(ForeignKey("cadre.id"), index=True)
    is_admin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    group: Mapped[BroadcastGroup] = relationship(back_populates="members")
