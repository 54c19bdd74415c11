"""The console blueprint: login, logout, the start page and the staff overview."""
from __future__ import annotations

import logging
import math

from flask import Blueprint, redirect, render_template, request, url_for
from sqlalchemy import func, select

from bot import yinling
from bot.roles import SUPERVISOR
from bot.console import guard
from bot.console.auth import Throttle, fingerprint, verify_login
from bot.console.pages import ConsolePage
from models.issues import ACTIVE_STATES, Ticket
from models.people import Staff

logger = logging.getLogger(__name__)

blueprint = Blueprint("console", __name__, url_prefix="/console")

PAGES = [ConsolePage("console.staff", "console/nav/staff.txt", order=90, role=SUPERVISOR)]


def _throttle() -> Throttle:
    yl = yinling()
    return Throttle(yl.redis, yl.settings.extra)


def safe_next(target: str | None) -> str:
    """Where to go after login: a console path of this site only (no open redirect)."""
    if target and target.startswith(guard.PREFIX + "/") and "//" not in target \
            and "\\" not in target and not any(ord(c) < 32 for c in target):
        return target
    return url_for("console.index")


@blueprint.get("/")
def index():
    """The first page of the nav this staff member may see."""
    who = guard.user()
    first = next((p for p in guard.pages() if p.visible_to(who.role)), None)
    return redirect(url_for(first.endpoint) if first else url_for("console.login"))


@blueprint.route("/login", methods=["GET", "POST"])
def login():
    """Name and password; repeated failures for a name are throttled."""
    target = request.values.get("next")
    if request.method == "GET":
        if guard.user() is not None:
            return redirect(safe_next(target))
        return render_template("console/login.html", next=target, name="", problem=None)
    name, password = request.form.get("name", ""), request.form.get("password", "")
    throttle, client = _throttle(), request.remote_addr or "?"
    wait = throttle.blocked_for(name, client)
    if wait:
        return _login_refused(name, target, "locked", 429, wait)
    with yinling().db.session() as db:
        who = verify_login(db, name, password) if name.strip() and password else None
        stamp = fingerprint(db.get(Staff, who.id).password_hash) if who else None
    if who is None:
        throttle.failed(name, client)
        wait = throttle.blocked_for(name, client)
        return _login_refused(name, target, "locked" if wait else "wrong", 429 if wait else 401,
                              wait)
    throttle.succeeded(name, client)
    guard.start_session(who, stamp)
    logger.info("console: staff %s logged in", who.id)
    return redirect(safe_next(target))


def _login_refused(name: str, target: str | None, problem: str, status: int, wait: int):
    return render_template("console/login.html", next=target, name=name, problem=problem,
                           minutes=max(math.ceil(wait / 60), 1)), status


@blueprint.post("/logout")
def logout():
    """End the session (a POST with the CSRF token, so no page can log staff out)."""
    who = guard.user()
    guard.end_session()
    if who is not None:
        logger.info("console: staff %s logged out", who.id)
    return redirect(url_for("console.login", bye=1))


@blueprint.get("/staff")
@guard.supervisor_required
def staff():
    """Supervisors: every staff member, duty, chat and console access, open tickets."""
    with yinling().db.session() as db:
        load = dict(db.execute(select(Ticket.assignee_id, func.count(Ticket.id))
                               .where(Ticket.state.in_(ACTIVE_STATES))
                               .group_by(Ticket.assignee_id)).all())
        people = [dict(name=s.name, role=s.role, on_duty=s.on_duty, active=s.active,
                       wechat=bool(s.openid), console=bool(s.password_hash),
                       open_tickets=load.get(s.id, 0))
                  for s in db.scalars(select(Staff).order_by(Staff.active.desc(),
                                                             Staff.role.desc(), Staff.name))]
    return render_template("console/staff.html", people=people)
