"""Console pages for 急难愁盼 tickets: the open list with SLA timers, one ticket's history,
and claim / reply / transfer / resolve / reopen through the same service as the chat."""
from __future__ import annotations

import logging
from datetime import datetime

from flask import Blueprint, flash, redirect, render_template, request, send_file, url_for
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from bot import yinling
from bot.work import work_for
from bot.console import guard
from bot.console.auth import normalise_name
from bot.console.pages import ConsolePage
from handlers.issues.sla import sla_timer
from handlers.issues import service
from handlers.issues.policy import load_policy
from handlers.issues.service import Refusal
from handlers.issues.views import (attachment_views, chat_reach, event_views, media_groups,
                                   ticket_view)
from handlers.people.service import help_requests_to_hear
from models.issues import MEDIA_SAVED, RESOLVED, Ticket, TicketAttachment
from models.people import Staff

logger = logging.getLogger(__name__)

# Under /console: the guard (bot/console/guard.py) puts every route behind the staff login.
blueprint = Blueprint("issues", __name__, url_prefix="/console")
console_pages = [ConsolePage("issues.tickets", "console/nav/tickets.txt", order=10)]
VIEWS = ("open", "mine", "resolved")
RESOLVED_SHOWN = 50
MAX_TEXT = service.MAX_TEXT
ACTIONS = ("claim", "reply", "transfer", "resolve", "reopen")


def _now() -> datetime:
    return datetime.now(yinling().settings.zone)


def _policy():
    return load_policy(yinling().settings)


def _line(policy, ticket: Ticket, now: datetime, me: int) -> dict:
    """One row of the list: the ticket as templates see it, plus its SLA timer."""
    return {"t": ticket_view(policy, ticket, now, me), "sla": sla_timer(policy, ticket, now)}


def _resolved(db) -> list[Ticket]:
    query = select(Ticket).options(selectinload(Ticket.cadre), selectinload(Ticket.assignee),
                                   selectinload(Ticket.attachments)) \
        .where(Ticket.state == RESOLVED) \
        .order_by(Ticket.resolved_at.desc(), Ticket.id.desc()).limit(RESOLVED_SHOWN)
    return list(db.scalars(query))


@blueprint.get("/tickets")
def tickets():
    """Open tickets, urgent and oldest first, with state, assignee, waiting time and SLA."""
    view = request.args.get("view", "open")
    view = view if view in VIEWS else "open"
    me, now, policy = guard.user().id, _now(), _policy()
    with yinling().db.session() as db:
        rows = _resolved(db) if view == "resolved" else service.active_tickets(db)
        if view == "mine":
            rows = [t for t in rows if t.assignee_id == me]
        lines = [_line(policy, t, now, me) for t in rows]
        asks = help_requests_to_hear(db, now) if view == "open" else []
        recordings = {a.id: attachment_views(a.attachments) for a in asks}
        counts = {"open": sum(line["t"].state == "open" for line in lines),
                  "late": sum(line["sla"].level != "ok" for line in lines)}
        return render_template("console/tickets.html", lines=lines, view=view, now=now,
                               counts=counts, asks=asks, recordings=recordings)


def _detail(db, number: int, *, refusal: Refusal | None = None, form: dict | None = None,
            status: int = 200):
    """Render the ticket page: the ticket, its SLA, its whole history, what can be done."""
    policy, now, who = _policy(), _now(), guard.user()
    try:
        ticket = service.get_ticket(db, number)
    except Refusal:
        return render_template("console/error.html", code=404), 404
    view = ticket_view(policy, ticket, now, who.id)
    may_act = ticket.state == "open" or view.mine or who.is_supervisor
    colleagues = list(db.scalars(select(Staff.name).where(
        Staff.active.is_(True), Staff.openid.is_not(None)).order_by(Staff.name)))
    return render_template(
        "console/ticket.html", t=view, sla=sla_timer(policy, ticket, now),
        events=event_views(db, policy, ticket),
        attachments=attachment_views(ticket.attachments),
        media=media_groups(ticket),
        reach=chat_reach(db, yinling().settings, ticket.reporter_openid, now),
        may_act=may_act, colleagues=colleagues, refusal=refusal, form=form or {},
        now=now), status


@blueprint.get("/tickets/<int:number>")
def ticket(number: int):
    """One ticket with its full event history."""
    with yinling().db.session() as db:
        return _detail(db, number)


@blueprint.get("/tickets/<int:number>/media/<int:attachment_id>")
def media(number: int, attachment_id: int):
    """A ticket's saved photo or recording, found by its id (never by a name from the request);
    staff only, like every /console page."""
    return _kept_file(attachment_id, lambda item: item.ticket_id == number, f"{number}")


@blueprint.get("/help/<int:number>/media/<int:attachment_id>")
def help_media(number: int, attachment_id: int):
    """The saved recording of 人工 request `number` (by attachment id, only that request's);
    staff only, like every /console page."""
    return _kept_file(attachment_id, lambda item: item.help_request_id == number,
                      f"help{number}")


def _kept_file(attachment_id: int, belongs, label: str):
    """Send a saved attachment that `belongs` to the parent in the address, else 404."""
    with yinling().db.session() as db:
        item = db.get(TicketAttachment, attachment_id)
        if item is None or not belongs(item) or item.status != MEDIA_SAVED:
            return render_template("console/error.html", code=404), 404
        name, mimetype = item.file_name, item.content_type
    path = yinling().services.media.store.path(name)
    if path is None or not mimetype:
        logger.warning("console: the file of attachment %s is missing", attachment_id)
        return render_template("console/error.html", code=404), 404
    playable = mimetype.startswith("image/") or mimetype == "audio/mpeg"
    response = send_file(path, mimetype=mimetype, conditional=True, etag=True,
                         as_attachment=not playable,
                         download_name=f"{label}-{attachment_id}{path.suffix}")
    response.headers["Cache-Control"] = "private, max-age=3600"  # personal: never shared
    return response


@blueprint.post("/tickets/<int:number>/<action>")
def ticket_action(number: int, action: str):
    """Claim, reply, transfer, resolve or reopen from the web (the chat's service calls)."""
    if action not in ACTIONS:
        return render_template("console/error.html", code=404), 404
    text = (request.form.get("text") or "").strip()[:MAX_TEXT]
    yl = yinling()
    try:
        with work_for(yl) as work:  # committed, then what was pushed is dispatched
            staff = work.db.get(Staff, guard.user().id)
            _act(work, staff, action, number, text)
    except Refusal as refusal:  # nothing was written: the session rolled back
        with yl.db.session() as db:
            return _detail(db, number, refusal=refusal, form={action: text}, status=409)
    logger.info("console: staff %s did %s on ticket %s", staff.id, action, number)
    flash(action, "done")
    return redirect(url_for("issues.ticket", number=number))


def _act(work, staff: Staff, action: str, number: int, text: str):
    """Call the ticket service function behind one console action."""
    if action == "claim":
        return service.claim(work, staff, number)
    if action == "reply":
        return service.reply(work, staff, number, text)[0]
    if action == "transfer":
        return service.transfer(work, staff, number, normalise_name(text))
    if action == "resolve":
        return service.resolve(work, staff, number, text)
    return service.reopen(work, staff, number, text)

