"""Console pages for group broadcasts: the recent ones with their delivery counts, and one
broadcast with its full text and counts per status. Every staff member may read them."""
from __future__ import annotations

import logging

from flask import Blueprint, abort, render_template, request
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from bot import yinling
from handlers.broadcasts import service
from bot.console.pages import ConsolePage
from models import Binding, Cadre
from models.broadcasts import Broadcast

logger = logging.getLogger(__name__)

blueprint = Blueprint("broadcasts", __name__, url_prefix="/console/broadcasts")
console_pages = [ConsolePage("broadcasts.index", "console/nav/broadcasts.txt", order=40)]
PAGE_SIZE = 30
FIRST_WORDS = 30  # characters of the text shown in the list


def _zone():
    return yinling().settings.zone


def first_words(text: str, limit: int = FIRST_WORDS) -> str:
    """The start of a notice on one line, with an ellipsis when cut."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[:limit].rstrip() + "…"


def _senders(db, broadcasts: list[Broadcast]) -> dict[int, str]:
    """{cadre id: name} of the senders (a broadcast keeps the sender's cadre id)."""
    ids = {b.sender_cadre_id for b in broadcasts if b.sender_cadre_id is not None}
    if not ids:
        return {}
    return dict(db.execute(select(Cadre.id, Cadre.name).where(Cadre.id.in_(ids))).all())


def view(b: Broadcast, sender: str | None, counts: service.Counts, zone) -> dict:
    """What the pages show of one broadcast (local times)."""
    def local(moment):
        return moment.astimezone(zone) if moment else None

    return {"number": b.id, "group": b.group.name, "sender": sender, "at": local(b.created_at),
            "held_until": local(b.not_before), "via": b.via, "recipients": b.recipients,
            "content": b.content, "start": first_words(b.content), "c": counts,
            "revoked_at": local(b.revoked_at), "revoked_count": b.revoked_count}


def _before() -> int | None:
    """The `before` paging cursor (an older page starts below this number)."""
    raw = request.args.get("before", "")
    return int(raw) if raw.isdigit() else None


@blueprint.get("/")
def index():
    """The most recent broadcasts, newest first, with delivered/pending/failed/cancelled."""
    before, zone = _before(), _zone()
    query = select(Broadcast).options(selectinload(Broadcast.group)) \
        .order_by(Broadcast.id.desc()).limit(PAGE_SIZE + 1)
    if before is not None:
        query = query.where(Broadcast.id < before)
    with yinling().db.session() as db:
        found = list(db.scalars(query))
        shown = found[:PAGE_SIZE]
        counts = service.counts(db, [b.id for b in shown])
        senders = _senders(db, shown)
        lines = [view(b, senders.get(b.sender_cadre_id), counts[b.id], zone) for b in shown]
    older = shown[-1].id if len(found) > PAGE_SIZE else None
    return render_template("console/broadcasts.html", lines=lines, older=older,
                           paged=before is not None)


@blueprint.get("/<int:number>")
def broadcast(number: int):
    """One broadcast: group, sender, times, the full text and its deliveries by status."""
    with yinling().db.session() as db:
        found = db.get(Broadcast, number)
        if found is None:
            abort(404)
        sender = _senders(db, [found]).get(found.sender_cadre_id)
        line = view(found, sender, service.counts(db, [number])[number], _zone())
        line["revoked_by"] = _name_of(db, found.revoked_by)
    return render_template("console/broadcasts_detail.html", b=line)


def _name_of(db, openid: str | None) -> str | None:
    """The name of the cadre an openid is bound to as themself (who withdrew a broadcast)."""
    if not openid:
        return None
    return db.scalar(select(Cadre.name).join(Binding, Binding.cadre_id == Cadre.id)
                     .where(Binding.openid == openid, Binding.relation == "self"))
