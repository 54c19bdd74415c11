"""/m/<token>: the page a push links to (PRODUCT.md 7.6).

GET learns who opens the page through WeChat's silent web login, then shows the whole message
in large type: with the answers the chat offers as big buttons to the recipient and the
cadre's bound family, masked and read-only to anyone else. POST records an answer through the
feature's service, inside one unit of work, and comes back to the page (303), which shows
what is recorded.

/m/subscribe lists the subscription notices (订阅通知) a user can accept, with what they
accepted so far. Inside WeChat's browser both pages offer WeChat's own button
(`wx-open-subscribe`, JS-SDK 1.6.0) for the kinds config/templates.yaml sends that way: the
page carries wx.config signed by this server for its own address, and a small script loads
the JS-SDK once the page has loaded. Elsewhere (or when the JS-SDK cannot load) the pages
carry no script, or a hint in words, and work as before.
"""
from __future__ import annotations

import logging
import re
import secrets
from datetime import datetime

from flask import (Blueprint, make_response, redirect, render_template, request, session,
                   url_for)
from markupsafe import Markup, escape
from sqlalchemy import select

from bot import pages, subscriptions, yinling
from bot.errors import Refusal
from bot.notices import load_notices
from bot.privacy import mask_names_in, remember_name
from bot.text import mask_phones_in
from bot.work import work_for
from handlers.pages import kinds
from models import Cadre, Delivery, Staff

logger = logging.getLogger(__name__)

blueprint = Blueprint("pages", __name__)
NOTE_KEY = "page_note"
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",   # the link itself is the key to the page
    "Cache-Control": "no-store",        # pages carry personal data
}
# Pages that load WeChat's JS-SDK allow its script (and this page's own, by nonce) and its
# hosts; nothing else changes.
SDK_URL = "https://res.wx.qq.com/open/js/jweixin-1.6.0.js"
SDK_CSP = ("default-src 'none'; style-src 'unsafe-inline'; "
           "script-src 'nonce-{nonce}' https://res.wx.qq.com https://res2.wx.qq.com; "
           "img-src https://*.qq.com; frame-src https://*.qq.com; "
           "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SUBSCRIBE_PATH = "/m/subscribe"
STAFF_KINDS = ("staff_alert", "escalation")  # their page is the console's (staff login)
# Mainland mobiles and numbers with an area code (0415-1234567): tapped to call.
PHONE = re.compile(r"(?<![\d*])(1[3-9]\d{9}|0\d{2,3}-?\d{7,8})(?![\d*])")


@blueprint.after_request
def _headers(response):
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response


@blueprint.app_template_filter("phones")
def phones(text: str, extra: str = "") -> Markup:
    """Escape text and make every phone number in it (and `extra`, the duty phone) a tel: link."""
    numbers = PHONE.pattern + (f"|{re.escape(extra)}" if extra else "")
    parts, last = [], 0
    for m in re.finditer(numbers, text):
        parts += [escape(text[last:m.start()]), _tel(m.group())]
        last = m.end()
    return Markup("").join(parts + [escape(text[last:])])


def _tel(number: str) -> Markup:
    return Markup('<a class="tel" href="tel:%s">%s</a>') % (re.sub(r"[^\d+]", "", number),
                                                            number)


def _delivery_id(token: str) -> int | None:
    """The delivery a page link names, or None when the link is altered or expired."""
    try:
        return pages.delivery_of(yinling().settings, token)
    except pages.BadLink:
        return None


def _expired(token: str) -> bool:
    """Whether a link that does not open was good once (expired) rather than altered."""
    try:
        pages.delivery_of(yinling().settings, token)
    except pages.BadLink as bad:
        return bad.expired
    return False


# ---- the routes ------------------------------------------------------------------------------
@blueprint.get(SUBSCRIBE_PATH)
def subscribe():
    """The subscription notices this user can accept, and what they accepted so far."""
    yl = yinling()
    waiting = _silent_login(_public(SUBSCRIBE_PATH))
    if waiting is not None:
        return waiting
    with yl.db.session() as db:
        offers = _offers(db, yl, pages.viewer())
    jssdk = _jssdk(yl) if any(o["button"] for o in offers) else None
    nonce = secrets.token_urlsafe(16)
    html = render_template("pages/subscribe.html", offers=offers, jssdk=jssdk, nonce=nonce,
                           sdk_url=SDK_URL, in_wechat=_in_wechat(), viewer=pages.viewer(),
                           duty_phone=yl.settings.duty_phone)
    return _with_sdk(html, jssdk, nonce)


@blueprint.get("/m/<token>")
def show(token: str):
    """The page: log the viewer in silently first, then show it."""
    yl, delivery_id = yinling(), _delivery_id(token)
    if delivery_id is None:
        return _bad_link(_expired(token))
    staff_page = _staff_page(yl, delivery_id)
    if staff_page is not None:
        return redirect(staff_page)
    waiting = _silent_login(_address(token))
    if waiting is not None:
        return waiting
    with yl.db.session() as db:
        delivery = db.get(Delivery, delivery_id)
        if delivery is None:
            return _bad_link(expired=False)
        return _render(db, yl, delivery, token)


@blueprint.post("/m/<token>")
def answer(token: str):
    """Record the answer tapped, then show the page again (what is recorded now)."""
    yl, delivery_id = yinling(), _delivery_id(token)
    if delivery_id is None:
        return _bad_link(_expired(token))
    if not pages.csrf_ok(request.form.get("csrf_token")):
        logger.warning("page of delivery %s: answer refused, CSRF token missing or wrong",
                       delivery_id)
        return _refused("csrf", 400)
    viewer = pages.viewer()
    with work_for(yl) as work:
        delivery = work.db.get(Delivery, delivery_id)
        if delivery is None:
            return _bad_link(expired=False)
        subject = kinds.subject_of(work.db, yl.settings, delivery)
        binding = kinds.binding_of(work.db, viewer, subject.cadre_id)
        if binding is None:
            logger.warning("page of delivery %s: %s may not answer", delivery_id, viewer)
            return _refused("not_yours", 403)
        _record(work, subject, viewer, binding)
    return redirect(request.path, code=303)


# ---- helpers ---------------------------------------------------------------------------------
def _staff_page(yl, delivery_id: int) -> str | None:
    """Where a staff alert or escalation leads: the ticket's console page (behind the staff
    login), or the console's list for news without a ticket; None for everyone else's pushes."""
    with yl.db.session() as db:
        delivery = db.get(Delivery, delivery_id)
        if delivery is None or delivery.push_kind not in STAFF_KINDS:
            return None
        parts = delivery.campaign.split(":")
    if len(parts) >= 2 and parts[0] == "issue" and parts[1].isdigit():
        return url_for("issues.ticket", number=int(parts[1]))
    return url_for("issues.tickets")



def _silent_login(here: str):
    """A redirect while WeChat's silent web login is under way; None once the viewer is
    known, or cannot be (sandbox, a failed login: the page is then read-only)."""
    settings = yinling().settings
    if pages.viewer() is not None or settings.sandbox:
        return None
    if "code" not in request.args:
        return redirect(pages.login_url(settings, here))
    pages.finish_login(settings, here, request.args["code"], request.args.get("state", ""))
    if pages.viewer() is not None:
        return redirect(pages.without_login(request.path, request.args))
    return None


def _public(path: str) -> str:
    """`path` as phones reach this server (YINLING_PUBLIC_URL, else the request's host)."""
    base = yinling().settings.public_url.rstrip("/") or request.host_url.rstrip("/")
    return base + path


def _address(token: str) -> str:
    """The page's own address as phones reach it (the web login comes back here)."""
    return _public(pages.PAGE_PATH + token)


# ---- subscription notices (wx-open-subscribe) --------------------------------------------------
def _in_wechat() -> bool:
    """Whether the page is open in WeChat's own browser (the only one with the open tags)."""
    return "micromessenger" in (request.user_agent.string or "").lower()


def _jssdk(yl) -> dict | None:
    """wx.config for this very address (as the browser shows it, without #), inside WeChat's
    browser only; None elsewhere, in sandbox mode, or when WeChat gives no ticket now."""
    if not _in_wechat():
        return None
    client = yl.dispatcher.deliverer.client
    config = client.jsapi_config(_public(request.full_path.rstrip("?")))
    if config is not None:
        config.update(jsApiList=["checkJsApi"], openTagList=["wx-open-subscribe"])
    return config


def _offers(db, yl, viewer: str | None, kind: str | None = None) -> list[dict]:
    """The subscription notices on offer (of one kind, or all), with this viewer's answers."""
    found = [(k, template, term) for k, template, term
             in load_notices(yl.settings).subscribable(yl.settings) if kind in (None, k)]
    rows = subscriptions.acceptances(db, viewer, [template for _, template, _ in found])
    offers = [{"kind": k, "template": template, "term": term,
               "status": getattr(rows.get(template), "status", None),
               "remaining": getattr(rows.get(template), "remaining", 0) or 0,
               "allowed": subscriptions.allows(rows.get(template), term)}
              for k, template, term in found]
    for offer in offers:   # a long-term acceptance needs no button; a one-time one adds more
        offer["button"] = not (offer["allowed"] and offer["term"] == subscriptions.LONG)
    return offers


def _with_sdk(html: str, jssdk: dict | None, nonce: str):
    """The response; a page that loads the JS-SDK allows its script and hosts."""
    response = make_response(html)
    if jssdk is not None:
        response.headers["Content-Security-Policy"] = SDK_CSP.format(nonce=nonce)
    return response


def _bad_link(expired: bool):
    return render_template("pages/bad_link.html", expired=expired,
                           duty_phone=yinling().settings.duty_phone), 410


def _refused(reason: str, status: int):
    return render_template("pages/refused.html", reason=reason,
                           duty_phone=yinling().settings.duty_phone), status


def _record(work, subject, viewer: str, binding) -> None:
    """Record through the feature's service; a refusal is told on the page that follows."""
    render = yinling().render
    try:
        kinds.act(work, subject, viewer, binding, request.form,
                  lambda day, half: render("pages/visit_time", day=day, half=half))
    except Refusal as refusal:
        session[NOTE_KEY] = render(refusal.template, code=refusal.code, **refusal.values)
    except kinds.NotOffered:
        session[NOTE_KEY] = render("pages/not_offered")
    else:
        if subject.kind == kinds.UPDATE:   # nothing on the page shows a note was sent
            session[NOTE_KEY] = render("pages/note_sent")


def _render(db, yl, delivery: Delivery, token: str):
    """The page as this viewer may see it."""
    viewer = pages.viewer()
    subject = kinds.subject_of(db, yl.settings, delivery)
    cadres = [subject.cadre_id] if subject.cadre_id else kinds.recipient_cadres(
        db, delivery.openid)
    binding = kinds.binding_of(db, viewer, subject.cadre_id)
    full = viewer is not None and (viewer == delivery.openid or binding is not None or any(
        kinds.binding_of(db, viewer, c) for c in cadres))
    today = datetime.now(yl.settings.zone).date()
    offered = kinds.offer(db, subject, today) if binding is not None else {}
    body = delivery.body if full else _masked(db, delivery.body, cadres)
    # WeChat's subscribe button for this kind of push, to those who read the whole page.
    offers = [o for o in _offers(db, yl, viewer, delivery.push_kind or "notice")
              if o["button"]] if full and _in_wechat() else []
    jssdk = _jssdk(yl) if offers else None
    nonce = secrets.token_urlsafe(16)
    html = render_template(
        "pages/message.html", body=body, full=full, can_act=bool(offered), offered=offered,
        subject=subject, kind=subject.kind, row=subject.row, viewer=viewer,
        note=session.pop(NOTE_KEY, None), csrf_token=pages.csrf_token(),
        duty_phone=yl.settings.duty_phone, choice_key=kinds.choice_key, token=token,
        offers=offers if jssdk else [], jssdk=jssdk, nonce=nonce, sdk_url=SDK_URL,
        subscribe_path=SUBSCRIBE_PATH)
    return _with_sdk(html, jssdk, nonce)


def _masked(db, text: str, cadres: list[int]) -> str:
    """The text with the names of the cadres concerned and of staff, and phones, masked."""
    names = list(db.scalars(select(Cadre.name).where(Cadre.id.in_(cadres)))) + \
        list(db.scalars(select(Staff.name)))
    for name in names:
        remember_name(name)
    return mask_names_in(mask_phones_in(text))
