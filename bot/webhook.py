"""/wechat: verify -> decrypt -> safe parse -> inbox (exactly once) -> reply."""
from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from xml.parsers import expat

import xmltodict
from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden
from flask import Blueprint, Response, request
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from wechatpy.events import EVENT_TYPES
from wechatpy.messages import MESSAGE_TYPES, UnknownMessage
from wechatpy.replies import TextReply

from bot import wxcrypto, yinling
from bot.inbox import DatabaseUnavailable
from models import Delivery, WebhookNonce, utcnow

logger = logging.getLogger(__name__)
bp = Blueprint("wechat", __name__)
NONCE_LIMIT = 1.0  # seconds the replay check may take before the message goes on without it


class Reject(Exception):
    """Stop handling with an HTTP status and a short reason (logged, never shown to users)."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


@bp.get("/wechat")
def verify():
    """WeChat's server check: echo echostr when the signature is right."""
    a = request.args
    settings = yinling().settings
    try:
        wxcrypto.check((settings.wechat_token, a.get("timestamp", ""), a.get("nonce", "")),
                       a.get("signature"))
    except wxcrypto.BadSignature:
        return Response("forbidden", 403)
    if not _fresh(settings, a.get("timestamp", "")):
        logger.warning("webhook verification refused: stale or missing timestamp")
        return Response("forbidden", 403)
    return Response(a.get("echostr", ""), mimetype="text/plain")


@bp.post("/wechat")
def receive():
    """Handle one pushed message or event and answer within WeChat's 5 seconds."""
    try:
        return _receive()
    except Reject as rej:
        logger.warning("webhook rejected (%s): %s", rej.status, rej.reason)
        return Response(rej.reason if rej.status != 403 else "forbidden", rej.status)
    except Exception:  # noqa: BLE001 - the webhook's one error boundary: never a 5xx to WeChat
        logger.exception("webhook failed")
        return Response("success", 200, mimetype="text/plain")


def _receive() -> Response:
    arrived = time.monotonic()  # WeChat's 5 s count from here: every wait below is in it
    yl = yinling()
    settings = yl.settings
    body = _read_body(settings.max_body_bytes)
    a = request.args
    timestamp, nonce = a.get("timestamp", ""), a.get("nonce", "")
    aes = a.get("encrypt_type", "raw").lower() == "aes"
    if aes and not settings.wechat_aes_key:
        raise Reject(400, "encrypted message but no WECHAT_AES_KEY configured")
    if not aes and settings.wechat_aes_key and not settings.allow_plaintext:
        # A plaintext signature covers no body: a verification signature could be replayed
        # on a forged message. WeChat sends safe and compatible mode encrypted.
        raise Reject(403, "plaintext message refused in safe mode")
    if not aes:
        _check(lambda: wxcrypto.check((settings.wechat_token, timestamp, nonce),
                                      a.get("signature")))
    _utf8(body)
    outer = _parse_xml(body)
    if aes:
        encrypt = outer.get("Encrypt")
        if not isinstance(encrypt, str):
            raise Reject(400, "no Encrypt element")
        _check(lambda: wxcrypto.check((settings.wechat_token, timestamp, nonce, encrypt),
                                      a.get("msg_signature")))
    _check_freshness(settings, timestamp, nonce, body, arrived, remember=not aes)
    if aes:
        keys = [k for k in (settings.wechat_aes_key, settings.wechat_aes_key_previous) if k]
        try:
            plain = wxcrypto.decrypt(outer["Encrypt"], keys, settings.wechat_appid)
        except wxcrypto.BadMessage as exc:
            raise Reject(400, str(exc)) from exc
        data = _parse_xml(plain.encode("utf-8"))
    else:
        plain, data = _utf8(body), outer
    message = _message_of(data)
    reply = yl.inbox.receive(message, data, plain, arrived)
    return _answer(message, reply, aes, nonce)


def _utf8(body: bytes) -> str:
    """The body as text: WeChat sends UTF-8, anything else (UTF-16, stray bytes) is refused."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Reject(400, "body is not UTF-8") from exc


def _check(fn) -> None:
    try:
        fn()
    except wxcrypto.BadSignature as exc:
        raise Reject(403, "bad signature") from exc


def _read_body(cap: int) -> bytes:
    """The request body, refusing anything over the cap before reading it all."""
    if request.content_length is not None and request.content_length > cap:
        raise Reject(413, "body too large")
    body = request.stream.read(cap + 1)
    if len(body) > cap:
        raise Reject(413, "body too large")
    if not body.strip():
        raise Reject(400, "empty body")
    return body


class _SafeExpat:
    """expat for xmltodict, refusing what defusedxml refuses, in the same single pass over the
    body: a DOCTYPE (so no entity and no external reference can even be declared) and any
    entity declaration. One parse per body instead of a defusedxml check and then a parse."""

    ExpatError = expat.ExpatError

    @staticmethod
    def ParserCreate(*args, **kwargs):  # expat's name: xmltodict calls it
        """An expat parser whose DTD and entity declarations raise."""
        parser = expat.ParserCreate(*args, **kwargs)
        parser.StartDoctypeDeclHandler = _no_dtd
        parser.EntityDeclHandler = _no_entity
        parser.UnparsedEntityDeclHandler = _no_entity
        return parser


def _no_dtd(name, sysid, pubid, has_internal_subset):
    raise DTDForbidden(name, sysid, pubid)


def _no_entity(name, *rest):
    raise EntitiesForbidden(name, None, None, None, None, None)


def _parse_xml(raw: bytes) -> dict:
    """Parse with DTDs, entities and external references refused; return the <xml> dict."""
    try:
        data = xmltodict.parse(raw, disable_entities=True, expat=_SafeExpat).get("xml")
    except (DefusedXmlException, expat.ExpatError, ValueError, AttributeError) as exc:
        raise Reject(400, f"malformed XML: {type(exc).__name__}") from exc
    except Exception as exc:  # noqa: BLE001 - whatever else hostile XML makes the parser raise
        raise Reject(400, f"malformed XML: {type(exc).__name__}") from exc
    if not isinstance(data, dict):
        raise Reject(400, "no <xml> root element")
    return data


def _message_of(data: dict):
    """wechatpy's typed message, after checking the fields every message has and the shape
    of WeChat's identifiers. User content (a long Content, Label or Url) is not refused."""
    required = ("ToUserName", "FromUserName", "CreateTime", "MsgType")
    if str(data.get("MsgType", "")).lower() == "event":
        required += ("Event",)   # wechatpy reads it first (an empty <Event/> once crashed it)
    for name in required:
        if not isinstance(data.get(name), str) or not data[name].strip():
            raise Reject(400, f"missing {name}")
    for name, shape in IDENTIFIERS.items():
        value = data.get(name)
        if value is not None and (not isinstance(value, str) or not shape.fullmatch(value)):
            raise Reject(400, f"{name} out of shape")
    nested = [k for k, v in data.items() if isinstance(v, (dict, list)) and k not in NESTED]
    if nested:
        raise Reject(400, f"elements where text belongs: {sorted(nested)[:3]}")
    try:
        return _typed(data)
    except (KeyError, ValueError, TypeError) as exc:
        raise Reject(400, f"unparseable message: {type(exc).__name__}") from exc


def _typed(data: dict):
    """wechatpy's `parse_message` (wechatpy/parser.py) on the fields parsed already, instead
    of parsing the XML a third time; on a copy, so `data` keeps what WeChat sent (the inbox's
    key reads the EventKey with its `qrscene_`). Event classes registered by bot.wxevents are
    in EVENT_TYPES like wechatpy's own."""
    message = dict(data)
    message_type = message["MsgType"].lower()
    if message_type != "event" and not message_type.startswith("device_"):
        return MESSAGE_TYPES.get(message_type, UnknownMessage)(message)
    event_type = message["Event"].lower() if "Event" in message else None
    if event_type is None and message_type.startswith("device_"):
        event_type = message_type
    elif message_type.startswith("device_"):
        event_type = f"device_{event_type}"
    if event_type == "subscribe" and message.get("EventKey"):
        event_key = message["EventKey"]
        if event_key.startswith(("scanbarcode|", "scanimage|")):
            event_type = message["Event"] = "subscribe_scan_product"
        elif event_key.startswith("qrscene_"):
            event_type = message["Event"] = "subscribe_scan"
            message["EventKey"] = event_key[len("qrscene_"):]
    return EVENT_TYPES.get(event_type, UnknownMessage)(message)


# WeChat's identifiers: what they look like (anything else is not WeChat, or is an attack).
IDENTIFIERS = {
    "ToUserName": re.compile(r"[\w-]{1,64}"), "FromUserName": re.compile(r"[\w-]{1,64}"),
    "CreateTime": re.compile(r"\d{1,12}"), "MsgType": re.compile(r"[a-z_]{1,32}"),
    "MsgId": re.compile(r"\d{1,24}"), "MsgID": re.compile(r"\d{1,24}"),
    "Event": re.compile(r"[A-Za-z_]{1,64}"), "MediaId": re.compile(r"[\w-]{1,256}"),
}
# Elements that nest by design (a subscription pop-up's <List> items, scan results …).
NESTED = {"List", "ScanCodeInfo", "SendPicsInfo", "SendLocationInfo", "CopyrightCheckResult",
          "ArticleUrlResult", "ResultList", "SubscribeMsgPopupEvent", "SubscribeMsgChangeEvent",
          "SubscribeMsgSentEvent"}


def _check_freshness(settings, timestamp: str, nonce: str, body: bytes,
                     arrived: float, *, remember: bool) -> None:
    """300 s window, and a (timestamp, nonce) pair may only ever sign one body.

    Only a plaintext signature needs the pair remembered: it covers no body, so a captured
    query string could sign a forged message. In safe mode msg_signature covers the
    ciphertext, so a replay is the very same message, which the inbox recognises by its key:
    no write (and no transaction) for it on the hot path."""
    if not _fresh(settings, timestamp):
        raise Reject(403, "stale or missing timestamp")
    if not re.fullmatch(r"[\w-]{1,64}", nonce or "", re.ASCII):
        raise Reject(400 if nonce else 403, "nonce out of shape" if nonce else "missing nonce")
    if not remember:
        return
    yl = yinling()
    try:  # a slow database may not spend the budget the message itself needs
        yl.inbox.within(min(NONCE_LIMIT, yl.inbox.spare(arrived)), _remember_nonce, yl.db,
                        settings, timestamp, nonce, hashlib.sha256(body).hexdigest())
    except DatabaseUnavailable as exc:
        # The signature and the window were checked; the message must reach the spool.
        logger.warning("nonce not checked (%s)", exc)


def _remember_nonce(db, settings, timestamp: str, nonce: str, digest: str) -> None:
    """Record the pair; Reject when it already signed another body."""
    try:
        with db.session() as session:
            row = WebhookNonce(timestamp=int(timestamp), nonce=nonce, body_sha=digest)
            session.add(row)
            session.flush()
            if row.id % 500 == 0:
                _prune_nonces(session, settings)
    except IntegrityError:
        with db.session() as session:
            seen = session.scalar(select(WebhookNonce.body_sha).where(
                WebhookNonce.timestamp == int(timestamp), WebhookNonce.nonce == nonce))
        if seen != digest:
            raise Reject(403, "timestamp and nonce reused with a different body") from None


def _fresh(settings, timestamp: str) -> bool:
    """Whether a signed timestamp is within the window around now."""
    return timestamp.isdigit() and len(timestamp) <= 12 and \
        abs(time.time() - int(timestamp)) <= settings.timestamp_window_seconds


def _prune_nonces(session, settings) -> None:
    """Forget pairs older than twice the timestamp window (they can no longer be replayed)."""
    from datetime import timedelta

    cutoff = utcnow() - timedelta(seconds=2 * settings.timestamp_window_seconds)
    session.execute(delete(WebhookNonce).where(WebhookNonce.created_at < cutoff))


def _answer(message, reply: str | None, aes: bool, nonce: str) -> Response:
    """`success` or a passive text reply; encrypted when the request was."""
    if not reply:
        return Response("success", 200, mimetype="text/plain")
    # wechatpy puts content in CDATA without escaping; split any `]]>` across two sections.
    safe = reply.replace("]]>", "]]]]><![CDATA[>")
    xml = TextReply(source=message.target, target=message.source, content=safe).render()
    if aes:
        s = yinling().settings
        xml = wxcrypto.encrypt_reply(xml, s.wechat_token, s.wechat_aes_key, s.wechat_appid,
                                     nonce, str(int(time.time())))
    return Response(xml, 200, mimetype="application/xml")


def outbox_signature(token: str, timestamp: str, nonce: str, openid: str) -> str:
    """The sandbox outbox's signature: the webhook's, with the openid asked for covered too."""
    return wxcrypto.sign(token, timestamp, nonce, f"outbox:{openid}")


@bp.get("/wechat/sandbox/outbox")
def sandbox_outbox():
    """Sandbox, development only: messages delivered to one openid after an id (simulator)."""
    yl = yinling()
    a = request.args
    if not yl.settings.sandbox or yl.settings.env == "production":
        return Response("not found", 404)
    openid, after = a.get("openid", ""), a.get("after", "0") or "0"
    if not openid or len(openid) > 64 or not after.isdigit() or len(after) > 18:
        return Response("bad parameters", 400)
    timestamp, nonce = a.get("timestamp", ""), a.get("nonce", "")
    expected = outbox_signature(yl.settings.wechat_token, timestamp, nonce, openid)
    if not _fresh(yl.settings, timestamp) or not hmac.compare_digest(
            expected, (a.get("signature") or "").lower()):
        return Response("forbidden", 403)
    with yl.db.session() as session:
        rows = session.scalars(select(Delivery).where(
            Delivery.openid == openid, Delivery.id > int(after),
            Delivery.status.in_(("sandbox", "sent"))).order_by(Delivery.id)).all()
        return {"messages": [{"id": d.id, "body": d.body, "template": d.template,
                              "status": d.status} for d in rows]}
