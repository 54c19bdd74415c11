"""Builds the XML WeChat pushes, signed and optionally encrypted (simulator and tests)."""
from __future__ import annotations

import itertools
import random
import string
import time
from dataclasses import dataclass
from xml.sax.saxutils import escape

from bot import wxcrypto

_msgids = itertools.count(int(time.time() * 1000) % 10**12 * 1000)


def message_xml(openid: str, msg_type: str = "text", *, to: str = "gh_yinling",
                create_time: int | None = None, msg_id: int | None = None, **fields) -> str:
    """XML for one user message or event; fields are WeChat element names (Content, Event…)."""
    create_time = int(time.time()) if create_time is None else create_time
    parts = [f"<ToUserName><![CDATA[{to}]]></ToUserName>",
             f"<FromUserName><![CDATA[{openid}]]></FromUserName>",
             f"<CreateTime>{create_time}</CreateTime>",
             f"<MsgType><![CDATA[{msg_type}]]></MsgType>"]
    for name, value in fields.items():
        parts.append(f"<{name}>{escape(str(value))}</{name}>")
    if msg_type != "event":
        parts.append(f"<MsgId>{msg_id if msg_id is not None else next(_msgids)}</MsgId>")
    return "<xml>" + "".join(parts) + "</xml>"


@dataclass
class SignedRequest:
    """Query string and body ready to POST to /wechat."""

    query: dict
    body: str


def sign_request(xml: str, token: str, *, aes_key: str = "", appid: str = "",
                 timestamp: int | None = None, nonce: str | None = None) -> SignedRequest:
    """Sign (and with an AES key, encrypt) a message exactly as WeChat's servers do."""
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or "".join(random.choices(string.digits, k=10))
    query = {"timestamp": timestamp, "nonce": nonce,
             "signature": wxcrypto.sign(token, timestamp, nonce), "openid": _openid_of(xml)}
    if not aes_key:
        return SignedRequest(query, xml)
    encrypt = wxcrypto.encrypt_body(xml, aes_key, appid)
    query.update(encrypt_type="aes", msg_signature=wxcrypto.sign(token, timestamp, nonce,
                                                                 encrypt))
    body = f"<xml><ToUserName><![CDATA[{appid}]]></ToUserName>" \
           f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    return SignedRequest(query, body)


def _openid_of(xml: str) -> str:
    start = xml.find("<FromUserName><![CDATA[")
    if start < 0:
        return ""
    start += len("<FromUserName><![CDATA[")
    return xml[start:xml.find("]]>", start)]


def read_reply(body: str, token: str, *, aes_key: str = "", appid: str = "") -> dict | None:
    """Decode a passive reply (decrypting when needed) into its fields; None for `success`."""
    import xmltodict

    if body.strip() in ("", "success"):
        return None
    data = xmltodict.parse(body)["xml"]
    if "Encrypt" in data:
        wxcrypto.check((token, data["TimeStamp"], data["Nonce"], data["Encrypt"]),
                       data["MsgSignature"])
        data = xmltodict.parse(wxcrypto.decrypt(data["Encrypt"], [aes_key], appid))["xml"]
    return data
