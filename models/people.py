"""Followers of the account, the cadre roster, family bindings and staff."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, and_, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, TimestampMixin, utcnow


class Follower(TimestampMixin, Base):
    """One WeChat user (openid) who has written to or followed the account."""

    __tablename__ = "follower"

    id: Mapped[int] = mapped_column(primary_key=True)
    openid: Mapped[str] = mapped_column(String(64), unique=True)
    subscribed: Mapped[bool] = mapped_column(default=True)
    subscribed_at: Mapped[datetime | None]
    unsubscribed_at: Mapped[datetime | None]
    scene: Mapped[str | None] = mapped_column(String(64))
    # The 48-hour customer-service window opens on each user message (or click/follow/scan).
    last_inbound_at: Mapped[datetime | None]
    last_inbound_kind: Mapped[str | None] = mapped_column(String(16))
    cs_sent_since_inbound: Mapped[int] = mapped_column(default=0)
    # The unread tail of a reply cut at WeChat's length limit, served by `更多`.
    more_text: Mapped[str | None] = mapped_column(Text)
    # Questions and conversations that outlive a 10-minute dialog, kept on the row every
    # message already locks and updates (no extra round trip):
    # the rating question after a ticket is resolved (open a day, beside any dialog);
    rating_ticket_id: Mapped[int | None]
    rating_until: Mapped[datetime | None]
    rating_by_number: Mapped[bool] = mapped_column(default=False)  # until they say something else
    # the staff member who wrote to this user last (a ticket reply or an answer to 人工),
    # or the user's own 人工 request: what they say next goes there (PRODUCT.md §5 threads);
    thread_kind: Mapped[str | None] = mapped_column(String(8))  # ticket | help
    thread_ref: Mapped[int | None]
    thread_staff_id: Mapped[int | None]
    thread_until: Mapped[datetime | None]
    # the dialog in progress (bot/dialog.py), until it times out: here, not in Redis, so a
    # Redis outage cannot lose it and reading it costs nothing;
    dialog: Mapped[str | None] = mapped_column(Text)
    dialog_until: Mapped[datetime | None]
    # the last dialog's state, kept a day so a late answer can pick it up again.
    draft: Mapped[str | None] = mapped_column(Text)
    draft_until: Mapped[datetime | None]
    # Someone acting for several cadres (a child for both parents) chose whom, for an hour.
    acting_cadre_id: Mapped[int | None]
    acting_until: Mapped[datetime | None]

    def open_thread(self, now: datetime):
        """(kind, ref, staff id) of the conversation this user's next words belong to."""
        if self.thread_kind and self.thread_until and self.thread_until > now:
            return self.thread_kind, self.thread_ref, self.thread_staff_id
        return None

    def close_thread(self) -> None:
        """Forget the thread (answered, or the user moved on)."""
        self.thread_kind = self.thread_ref = self.thread_staff_id = self.thread_until = None


class Cadre(TimestampMixin, Base):
    """A retired cadre from the roster; the phone number is the identity across imports."""

    __tablename__ = "cadre"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    phone: Mapped[str] = mapped_column(String(11), unique=True)
    unit: Mapped[str | None] = mapped_column(String(128))
    branch: Mapped[str | None] = mapped_column(String(128), index=True)
    birth_date: Mapped[date | None]
    is_military: Mapped[bool] = mapped_column(default=False)
    address: Mapped[str | None] = mapped_column(String(256))
    community: Mapped[str | None] = mapped_column(String(128))
    active: Mapped[bool] = mapped_column(default=True)
    # Marked 已故 (roster column or `roster deceased`): no greeting, reminder, visit notice or
    # broadcast goes to them or to their family about them; bindings and history are kept.
    deceased_on: Mapped[date | None]

    bindings: Mapped[list["Binding"]] = relationship(back_populates="cadre")

    @classmethod
    def to_be_pushed(cls):
        """The clause for cadres scheduled pushes may concern: on the roster, not deceased."""
        return and_(cls.active.is_(True), cls.deceased_on.is_(None))


class Binding(Base):
    """An openid bound to a cadre, as the cadre (`self`) or as a family member (`family`)."""

    __tablename__ = "binding"
    # A cadre has at most one account bound as themselves: a rule in the database, so two
    # accounts binding at the same moment cannot both win.
    __table_args__ = (UniqueConstraint("openid", "cadre_id"),
                      Index("uq_binding_self_cadre", "cadre_id", unique=True,
                            sqlite_where=text("relation = 'self'"),
                            postgresql_where=text("relation = 'self'")))

    id: Mapped[int] = mapped_column(primary_key=True)
    openid: Mapped[str] = mapped_column(String(64), index=True)
    cadre_id: Mapped[int] = mapped_column(ForeignKey("cadre.id"), index=True)
    relation: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    cadre: Mapped[Cadre] = relationship(back_populates="bindings")


class Staff(TimestampMixin, Base):
    """A member of the bureau's staff, reachable in chat once they redeemed an invite."""

    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    openid: Mapped[str | None] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16), default="staff")
    on_duty: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)
    password_hash: Mapped[str | None] = mapped_column(String(256))


class StaffInvite(Base):
    """A one-time code that turns whoever sends it into staff."""

    __tablename__ = "staff_invite"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16), default="staff")
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BindAttempt(Base):
    """Wrong binding answers from one openid; three in a row lock binding for an hour."""

    __tablename__ = "bind_attempt"

    id: Mapped[int] = mapped_column(primary_key=True)
    openid: Mapped[str] = mapped_column(String(64), unique=True)
    failures: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class BindGuard(Base):
    """Wrong binding answers naming one cadre, from any account, counted per local day.

    Ten in a day pause binding to that cadre until staff lift the pause.
    """

    __tablename__ = "bind_guard"

    id: Mapped[int] = mapped_column(primary_key=True)
    cadre_id: Mapped[int] = mapped_column(ForeignKey("cadre.id"), unique=True)
    day: Mapped[date]
    failures: Mapped[int] = mapped_column(default=0)
    paused_at: Mapped[datetime | None]


class BindingNotice(Base):
    """A new binding announced to one of the cadre's other accounts, who may undo it."""

    __tablename__ = "binding_notice"

    id: Mapped[int] = mapped_column(primary_key=True)
    openid: Mapped[str] = mapped_column(String(64), index=True)
    binding_id: Mapped[int]  # no foreign key: the binding may be gone when the notice is read
    cadre_id: Mapped[int] = mapped_column(ForeignKey("cadre.id"))
    bound_openid: Mapped[str] = mapped_column(String(64))
    relation: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    undone_at: Mapped[datetime | None]


class BindCode(Base):
    """A personal QR code staff print for one cadre: scanning it binds without typing, once."""

    __tablename__ = "bind_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(32), unique=True)
    cadre_id: Mapped[int] = mapped_column(ForeignKey("cadre.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by: Mapped[str | None] = mapped_column(String(64))


class ActionLog(Base):
    """Who did what for which cadre, and whether a family member acted on the cadre's behalf."""

    __tablename__ = "action_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    openid: Mapped[str] = mapped_column(String(64), index=True)
    cadre_id: Mapped[int | None] = mapped_column(ForeignKey("cadre.id"), index=True)
    action: Mapped[str] = mapped_column(String(64))
    on_behalf: Mapped[bool] = mapped_column(default=False)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class HelpRequest(Base):
    """A `人工` request: who asked (and for which cadre), and the staff member answering it."""

    __tablename__ = "help_request"

    id: Mapped[int] = mapped_column(primary_key=True)
    openid: Mapped[str] = mapped_column(String(64), index=True)
    cadre_id: Mapped[int | None] = mapped_column(ForeignKey("cadre.id"))
    on_behalf: Mapped[bool] = mapped_column(default=False)
    text: Mapped[str | None] = mapped_column(Text)
    asked_at: Mapped[datetime] = mapped_column(default=utcnow)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    answered_at: Mapped[datetime | None]
    answers: Mapped[int] = mapped_column(default=0)

    cadre: Mapped[Cadre | None] = relationship()
    # Recordings of the user's voice messages in this request (models/issues.py, bot/media.py).
    attachments: Mapped[list["TicketAttachment"]] = relationship(  # noqa: F821
        back_populates="help_request", order_by="TicketAttachment.id")


def recipients_of(session, cadre_id: int) -> list[str]:
    """Openids that receive a cadre's pushes: the cadre and bound family, still following."""
    from sqlalchemy import select

    rows = session.execute(
        select(Binding.openid, Follower.subscribed)
        .outerjoin(Follower, Follower.openid == Binding.openid)
        .where(Binding.cadre_id == cadre_id)
        .order_by(Binding.relation.desc(), Binding.id)  # self before family
    ).all()
    return [openid for openid, subscribed in rows if subscribed is not False]


def on_duty_openids(session) -> list[str]:
    """Who gets staff pings: active on-duty staff, or supervisors when nobody is on duty."""
    from sqlalchemy import select

    base = select(Staff.openid).where(Staff.active.is_(True), Staff.openid.is_not(None))
    on_duty = list(session.scalars(base.where(Staff.on_duty.is_(True)).order_by(Staff.id)))
    return on_duty or list(session.scalars(base.where(Staff.role == "supervisor")
                                           .order_by(Staff.id)))


def open_threads(session, openids, kind: str, ref: int, staff_id: int | None,
                 until: datetime) -> None:
    """Someone wrote to these users: what they say next (not a command) goes there."""
    from sqlalchemy import update

    if not openids:
        return
    session.execute(update(Follower).where(Follower.openid.in_(list(openids))).values(
        thread_kind=kind, thread_ref=ref, thread_staff_id=staff_id, thread_until=until))


def ask_rating_of(session, openid: str, ticket_id: int, until: datetime | None) -> None:
    """Put (or, with until None, take back) the rating question in front of one user."""
    from sqlalchemy import update

    query = update(Follower).where(Follower.openid == openid)
    if until is None:
        query = query.where(Follower.rating_ticket_id == ticket_id)
    session.execute(query.values(rating_ticket_id=ticket_id if until else None,
                                 rating_until=until, rating_by_number=until is not None))
