"""What every /console page gets: login required, CSRF on POST, roles, headers, the nav.

Installed app-wide (not only on the console blueprint) so that other features'
blueprints mounted under /console/ are protected the same way without code of their own.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from functools import wraps

from flask import current_app, g, redirect, render_template, request, session, url_for
from markupsafe import Markup, escape

from bot import yinling
from bot.kv import RedisDown
from bot.console.auth import StaffUser, current_user
from bot.console.pages import ConsolePage
from models import utcnow

logger = logging.getLogger(__name__)

PREFIX = "/console"
PUBLIC_ENDPOINTS = {"console.login", "static"}
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
SESSION_HOURS = 12  # a login lasts a working day; settings.extra["console_session_hours"]
# Session keys (prefixed: the cookie is shared with anything else that uses flask.session).
STAFF_KEY, STAMP_KEY, AT_KEY, CSRF_KEY, SID_KEY = (
    "console_staff", "console_stamp", "console_at", "console_csrf", "console_sid")
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "script-src 'none'; frame-ancestors 'none'; form-action 'self'; "
                               "base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # pages carry personal data: never cached
}


def in_console() -> bool:
    """Whether this request is for a console page."""
    return request.path == PREFIX or request.path.startswith(PREFIX + "/")


def pages() -> list[ConsolePage]:
    """Every registered console page, in nav order."""
    return sorted(current_app.extensions["console_pages"], key=lambda p: (p.order, p.endpoint))


def user() -> StaffUser | None:
    """The logged-in staff member of this request, or None."""
    return g.get("console_user")


# ---- CSRF ----------------------------------------------------------------------------------
def csrf_token() -> str:
    """This session's CSRF token (created on first use)."""
    token = session.get(CSRF_KEY)
    if not isinstance(token, str) or len(token) < 32:
        token = session[CSRF_KEY] = secrets.token_urlsafe(32)
    return token


def csrf_field() -> Markup:
    """The hidden input every console form carries."""
    return Markup('<input type="hidden" name="csrf_token" value="%s">') % escape(csrf_token())


def csrf_ok() -> bool:
    """Whether an unsafe request carries this session's token (constant-time compare)."""
    expected = session.get(CSRF_KEY)
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
    return isinstance(expected, str) and bool(sent) and \
        hmac.compare_digest(sent.encode(), expected.encode())


# ---- the session ---------------------------------------------------------------------------
def start_session(who: StaffUser, stamp: str) -> None:
    """Log in: a fresh session (new CSRF token) bound to the staff member and password."""
    session.clear()
    session.permanent = False
    session[STAFF_KEY], session[STAMP_KEY] = who.id, stamp
    session[AT_KEY] = int(utcnow().timestamp())
    session[CSRF_KEY] = secrets.token_urlsafe(32)
    session[SID_KEY] = secrets.token_urlsafe(16)


def _session_hours() -> float:
    return float((yinling().settings.extra or {}).get("console_session_hours", SESSION_HOURS))


def _revoked_key(sid: str) -> str:
    return "console:revoked:" + hashlib.sha256(sid.encode()).hexdigest()[:32]


def end_session() -> None:
    """Log out; the signed cookie is also revoked, so a copy of it no longer works."""
    sid = session.get(SID_KEY)
    session.clear()
    if isinstance(sid, str):
        try:
            yinling().redis.set(_revoked_key(sid), 1, ex=int(_session_hours() * 3600) + 300)
        except RedisDown:
            logger.warning("console: Redis down, a logged-out cookie stays valid until expiry")


def _revoked(sid) -> bool:
    if not isinstance(sid, str):
        return True
    try:
        return bool(yinling().redis.exists(_revoked_key(sid)))
    except RedisDown:  # a logout cannot be checked: fail closed (log in again later)
        logger.warning("console: Redis down, sessions cannot be checked for logout")
        return True


def _load_user() -> StaffUser | None:
    """The session's staff member, if logged in, not expired, still active, same password."""
    staff_id, stamp, at = session.get(STAFF_KEY), session.get(STAMP_KEY), session.get(AT_KEY)
    if staff_id is None:
        return None
    if not isinstance(at, int) or utcnow().timestamp() - at > _session_hours() * 3600 \
            or _revoked(session.get(SID_KEY)):
        return None
    with yinling().db.session() as db:
        return current_user(db, staff_id, stamp)


# ---- the request hooks -----------------------------------------------------------------------
def before_console_request():
    """CSRF for POSTs, then login and role checks, for every /console request."""
    if not in_console():
        return None
    if any("\x00" in v for v in [*request.form.values(), *request.args.values()]):
        logger.warning("console: %s %s refused, a NUL in the input", request.method,
                       request.path)
        return render_template("console/error.html", code=400), 400
    if request.method in UNSAFE_METHODS and not csrf_ok():
        logger.warning("console: %s %s refused, CSRF token missing or wrong", request.method,
                       request.path)
        return render_template("console/error.html", code=400), 400
    who = _load_user()
    g.console_user = who
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if who is None:
        if session.get(STAFF_KEY) is not None:
            end_session()  # expired, deactivated or password changed
        target = request.full_path if request.method == "GET" else None
        return redirect(url_for("console.login", next=target.rstrip("?") if target else None))
    page = next((p for p in pages() if p.endpoint == request.endpoint), None)
    if page is not None and not page.visible_to(who.role):
        return forbidden()
    return None


def after_console_request(response):
    """Security headers on every console response."""
    if in_console():
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if yinling().settings.env == "production":  # served over https only
            response.headers.setdefault("Strict-Transport-Security",
                                        "max-age=31536000; includeSubDomains")
    return response


def forbidden():
    """The 'not allowed' page (logged without personal data)."""
    who = user()
    logger.warning("console: staff %s refused %s (role %s)", who.id if who else None,
                   request.endpoint, who.role if who else None)
    return render_template("console/error.html", code=403), 403


def supervisor_required(view):
    """Decorate a console view that only supervisors may use."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        who = user()
        if who is None or not who.is_supervisor:
            return forbidden()
        return view(*args, **kwargs)
    return wrapper


def nav_context() -> dict:
    """Template globals for console pages: the user, the nav, the CSRF field."""
    if not in_console():
        return {}
    who = user()
    render = yinling().render
    nav = [(p.endpoint, render(p.label_template)) for p in pages()
           if who is not None and p.visible_to(who.role)]
    return {"console_user": who, "console_nav": nav, "csrf_field": csrf_field}


def not_found(_error=None):
    """The console's 404 page (other paths keep Flask's)."""
    if not in_console():
        return _error
    return render_template("console/error.html", code=404), 404


def install(app, modules) -> None:
    """Hook the guard into the whole app, with the nav built from the feature modules."""
    from bot.console.pages import collect_pages

    app.extensions["console_pages"] = collect_pages(modules)
    app.before_request(before_console_request)
    app.after_request(after_console_request)
    app.context_processor(nav_context)
    app.register_error_handler(404, not_found)

