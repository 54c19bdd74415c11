"""Urgent-and-anxious (急难愁盼) tickets, their audit trail, attachments and staff focus."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow
from models.people import Cadre, HelpRequest, Staff

# Ticket states: open (nobody has it) -> claimed (an assignee works on it) -> resolved.
# A resolved ticket can be reopened (back to claimed, same assignee). Nothing is ever deleted.
OPEN, CLAIMED, RESOLVED = "open", "claimed", "resolved"
ACTIVE_STATES = (OPEN, CLAIMED)


class Ticket(Base):
    """One reported problem; its id is the short number people read aloud (问题 12)."""

    __tablename__ = "ticket"
    __table_args__ = (Index("ix_ticket_state_created_at", "state", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cadre_id: Mapped[int] = mapped_column(ForeignKey("cadre.id"), index=True)
    reporter_openid: Mapped[str] = mapped_column(String(64), index=True)
    on_behalf: Mapped[bool] = mapped_column(default=False)  # reported by a family member
    category: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text)
    urgent: Mapped[bool] = mapped_column(default=False)
    state: Mapped[str] = mapped_column(String(16), default=OPEN)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    # Bumped on every (re)assignment: claim, transfer, reopen. Keys the reply reminder.
    assign_round: Mapped[int] = mapped_column(default=0)
    assigned_at: Mapped[datetime | None]
    last_reply_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    resolution: Mapped[str | None] = mapped_column(Text)
    rating: Mapped[int | None]
    rated_at: Mapped[datetime | None]
    # SLA breaches already acted on (each is acted on once).
    renotified_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]
    reminded_round: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    cadre: Mapped[Cadre] = relationship()
    assignee: Mapped[Staff | None] = relationship()
    events: Mapped[list["TicketEvent"]] = relationship(
        back_populates="ticket", order_by="TicketEvent.id")
    attachments: Mapped[list["TicketAttachment"]] = relationship(
        back_populates="ticket", order_by="TicketAttachment.id")


class TicketEvent(Base):
    """One change or message on a ticket: who, when, what, on whose behalf."""

    __tablename__ = "ticket_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"), index=True)
    # created, note, claimed, replied, transferred, resolved, reopened, rated,
    # sla_renotify, sla_escalate, sla_remind
    kind: Mapped[str] = mapped_column(String(24))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_role: Mapped[str] = mapped_column(String(16))  # cadre | family | staff | system
    actor_openid: Mapped[str | None] = mapped_column(String(64))
    actor_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    on_behalf_cadre_id: Mapped[int | None] = mapped_column(ForeignKey("cadre.id"))
    text: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict | None] = mapped_column(JSON)

    ticket: Mapped[Ticket] = relationship(back_populates="events")


# A photo's or voice recording's copy (bot/media.py): WeChat deletes its media after 3 days.
# pending (to be downloaded) -> saved (a file under YINLING_MEDIA_DIR), or failed (refused or
# never downloadable), or expired (WeChat no longer has it). Locations have no media status.
MEDIA_PENDING, MEDIA_SAVED, MEDIA_FAILED, MEDIA_EXPIRED = "pending", "saved", "failed", "expired"
MEDIA_KINDS = ("image", "voice")


class TicketAttachment(Base):
    """A photo, voice recording or location sent with (or added to) a ticket, or a voice
    recording that joined a 人工 request (WeChat could not turn it into words): exactly one
    of the two parents. The kept copy works the same for both (bot/media.py)."""

    __tablename__ = "ticket_attachment"
    __table_args__ = (CheckConstraint(
        "(ticket_id IS NULL AND help_request_id IS NOT NULL) OR "
        "(ticket_id IS NOT NULL AND help_request_id IS NULL)", name="one_parent"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id"), index=True)
    help_request_id: Mapped[int | None] = mapped_column(ForeignKey("help_request.id"),
                                                        index=True)
    kind: Mapped[str] = mapped_column(String(16))  # image | voice | location
    media_id: Mapped[str | None] = mapped_column(String(128))
    url: Mapped[str | None] = mapped_column(String(1024))
    latitude: Mapped[str | None] = mapped_column(String(32))
    longitude: Mapped[str | None] = mapped_column(String(32))
    label: Mapped[str | None] = mapped_column(String(256))
    # Who sent it (the reporter, family adding a note, the user of a 人工 request): told when
    # a recording could not be kept (bot/media.py). Empty on rows made before it was kept.
    sender_openid: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The kept copy (photos and voice only): see MEDIA_* above.
    status: Mapped[str | None] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    next_try_at: Mapped[datetime | None]  # a retry's time, or the end of a running attempt
    file_name: Mapped[str | None] = mapped_column(String(160))  # under YINLING_MEDIA_DIR
    content_type: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int | None]
    saved_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(String(32))  # why failed/expired, a short code

    ticket: Mapped[Ticket | None] = relationship(back_populates="attachments")
    help_request: Mapped[HelpRequest | None] = relationship(back_populates="attachments")


class StaffFocus(Base):
    """The ticket a staff member was last pushed or worked on: `接单` / `回复 …` need no number."""

    __tablename__ = "staff_focus"

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), unique=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
