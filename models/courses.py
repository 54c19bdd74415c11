"""Courses (老年大学 / 微课堂): sessions, enrolments with a wait-list, and their audit trail."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, TimestampMixin, utcnow
from models.people import Cadre

# Enrolment states: enrolled (has a seat) | waitlisted (queued by queue_no) | cancelled.
# A cadre has at most one row per course (unique constraint); signing up again after a
# cancellation reuses the row and joins the end of the queue.
ENROLLED, WAITLISTED, CANCELLED = "enrolled", "waitlisted", "cancelled"
ACTIVE_STATES = (ENROLLED, WAITLISTED)


class Course(TimestampMixin, Base):
    """One class; its id is the number people sign up with (报名 3). Names are unique."""

    __tablename__ = "course"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    venue: Mapped[str] = mapped_column(String(256))
    capacity: Mapped[int]
    deadline: Mapped[date]  # last local day on which sign-up is open (inclusive)
    active: Mapped[bool] = mapped_column(default=True)
    # Bumped under the course row lock for each sign-up: the wait-list order.
    signup_seq: Mapped[int] = mapped_column(default=0)

    sessions: Mapped[list["CourseSession"]] = relationship(
        back_populates="course", order_by="CourseSession.starts_at",
        cascade="all, delete-orphan")


class CourseSession(Base):
    """One meeting of a course (its own reminder is keyed by this row's id)."""

    __tablename__ = "course_session"
    __table_args__ = (UniqueConstraint("course_id", "starts_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"), index=True)
    starts_at: Mapped[datetime] = mapped_column(index=True)

    course: Mapped[Course] = relationship(back_populates="sessions")


class Enrollment(Base):
    """A cadre's place in a course: a seat, a wait-list position, or a cancelled sign-up."""

    __tablename__ = "enrollment"
    __table_args__ = (UniqueConstraint("course_id", "cadre_id"),
                      Index("ix_enrollment_course_id_state", "course_id", "state"))

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"))
    cadre_id: Mapped[int] = mapped_column(ForeignKey("cadre.id"), index=True)
    state: Mapped[str] = mapped_column(String(16))
    queue_no: Mapped[int]  # order of sign-up within the course (wait-list order)
    signed_up_at: Mapped[datetime] = mapped_column(default=utcnow)
    enrolled_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    signed_up_by: Mapped[str | None] = mapped_column(String(64))  # openid that acted
    on_behalf: Mapped[bool] = mapped_column(default=False)

    course: Mapped[Course] = relationship()
    cadre: Mapped[Cadre] = relationship()


class CourseEvent(Base):
    """One sign-up, wait-listing, cancellation or promotion: who, when, for whom."""

    __tablename__ = "course_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"), index=True)
    cadre_id: Mapped[int] = mapped_column(ForeignKey("cadre.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))  # enrolled|waitlisted|cancelled|promoted|leave
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_role: Mapped[str] = mapped_column(String(16))  # cadre | family | staff | system
    actor_openid: Mapped[str | None] = mapped_column(String(64))
    on_behalf: Mapped[bool] = mapped_column(default=False)
    data: Mapped[dict | None] = mapped_column(JSON)
