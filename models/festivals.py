"""Festival visits: which cadres were told of a visit, and what they answered."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow
from models.people import Cadre

# Answers: `走访 <time>` (TIME, with the words as preferred_time) or `不在家` (AWAY).
TIME, AWAY = "time", "away"


class FestivalVisit(Base):
    """One cadre's visit notice for one festival date, and their answer (the latest wins)."""

    __tablename__ = "festival_visit"
    __table_args__ = (UniqueConstraint("festival_key", "festival_date", "cadre_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    festival_key: Mapped[str] = mapped_column(String(32))
    festival_date: Mapped[date] = mapped_column(index=True)
    cadre_id: Mapped[int] = mapped_column(ForeignKey("cadre.id"), index=True)
    noticed_at: Mapped[datetime] = mapped_column(default=utcnow)
    answer: Mapped[str | None] = mapped_column(String(8))
    preferred_time: Mapped[str | None] = mapped_column(String(200))
    answered_by: Mapped[str | None] = mapped_column(String(64))  # openid
    on_behalf: Mapped[bool] = mapped_column(default=False)  # answered by a family member
    answered_at: Mapped[datetime | None]

    cadre: Mapped[Cadre] = relationship()
