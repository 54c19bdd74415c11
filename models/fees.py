"""Fee ledger (党费 and other fees): one item per (cadre, fee type, period), and its history."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, TimestampMixin, utcnow
from models.people import Cadre

PAID_BY_IMPORT = "import"  # paid_source: the ledger file said so
PAID_BY_CHAT = "chat"      # paid_source: staff marked it with `已缴`


class FeeItem(TimestampMixin, Base):
    """What one cadre owes for one fee type in one month, and whether it is paid."""

    __tablename__ = "fee_item"
    __table_args__ = (UniqueConstraint("cadre_id", "fee_type", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cadre_id: Mapped[int] = mapped_column(ForeignKey("cadre.id"), index=True)
    fee_type: Mapped[str] = mapped_column(String(32))
    period: Mapped[str] = mapped_column(String(7), index=True)  # YYYY-MM, sorts as text
    amount_fen: Mapped[int]  # money in fen (0.01 yuan): no float rounding anywhere
    paid: Mapped[bool] = mapped_column(default=False, index=True)
    paid_on: Mapped[date | None]
    paid_source: Mapped[str | None] = mapped_column(String(16))
    paid_by: Mapped[str | None] = mapped_column(String(64))  # staff name when marked in chat

    cadre: Mapped[Cadre] = relationship()
    events: Mapped[list["FeeEvent"]] = relationship(back_populates="item",
                                                    order_by="FeeEvent.id")


class FeeEvent(Base):
    """Audit trail of a ledger item: imported, updated, marked paid (who, when, from where)."""

    __tablename__ = "fee_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("fee_item.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # added / updated / paid
    actor: Mapped[str] = mapped_column(String(64))  # staff name, or "import"
    actor_openid: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(String(256))
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    item: Mapped[FeeItem] = relationship(back_populates="events")
