"""A fake WeChat API on loopback: stable tokens, chat and template messages, menus, faults.

Tests start it on 127.0.0.1 with an ephemeral port and point WECHAT_API_BASE at `fake.base`.
It checks the access token on every call (unknown -> 40001, expired -> 42001), records what it
accepted, and injects faults on demand: an errcode (45015, 45047, 43004, 45009, -1…), an HTTP
status (500…) or a slow answer, for a number of calls, optionally for one openid.

WeChat's web login (snsapi_base) for the pages a push links to: GET /connect/oauth2/authorize
(the WECHAT_OAUTH_BASE side) sends the browser straight back to `redirect_uri` with a one-time
code for the openid of whoever opens it — the `fake_openid` cookie when the browser has one,
else `fake.visitor`; GET /sns/oauth2/access_token (under WECHAT_API_BASE) turns the code into
that openid, once.

Run alone (benchmark): `python -m tests.fake_wechat --latency 0.05` prints `READY <base url>`;
GET /_fake/stats then returns the counts.

What a phone shows (WeChat since May 2023, `Sent.shown`): a template message without `first`
and `remark`, without line breaks, each field cut to 20 characters with an ellipsis (WeChat
accepts longer fields and cuts them). A typed field (`thing1`, `character_string2`, …) with
characters its type does not allow is refused with 47003; a subscription notice
(`message/subscribe/bizsend`) is also refused when a field is over its type's limit, empty, or
has a line break. The rules are written out here again, apart from bot/fields.py, so that the
fake checks the service instead of agreeing with it.

Subscription notices reach only users who accepted them: `fake.accept(openid, template_id,
once=…)` plays the user tapping 允许 on WeChat's pop-up (the test posts the matching
subscribe_msg_popup_event to the webhook). A long-term acceptance lasts; a one-time one is
used by one notice. Without one, bizsend answers 43101 ("user refuse to accept the msg").
The JS-SDK's `ticket/getticket?type=jsapi` hands out one ticket at a time (`jsapi_ticket`),
counting the calls (`ticket_requests`).
"""
from __future__ import annotations

import argparse
import itertools
import json
import re
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs, urlencode, urlparse

APIS = {"/cgi-bin/stable_token": "token", "/cgi-bin/message/custom/send": "custom",
        "/cgi-bin/message/template/send": "template", "/cgi-bin/menu/create": "menu",
        "/cgi-bin/message/subscribe/bizsend": "subscribe",
        "/cgi-bin/ticket/getticket": "ticket"}
ERRMSG = {0: "ok", -1: "system error", 40001: "invalid credential", 42001:
          "access_token expired", 45015: "response out of time limit or subscription is "
          "canceled", 45047: "out of response count limit", 43004: "require subscribe",
          45009: "reach max api daily quota limit", 40125: "invalid appsecret",
          47001: "data format error", 40037: "invalid template_id", 47003: "argument invalid!",
          40013: "invalid appid", 40029: "invalid code", 40163: "code been used",
          43101: "user refuse to accept the msg", 40097: "invalid args"}
OAUTH_AUTHORIZE, OAUTH_TOKEN = "/connect/oauth2/authorize", "/sns/oauth2/access_token"
VISITOR_COOKIE = "fake_openid"   # a browser's own identity for the web login
SHOWN = 20                 # characters a template message shows of one field
NOT_SHOWN = ("first", "remark")


def _han(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf"


def _sym(ch: str) -> bool:
    return ch.isascii() and ch.isprintable() and not ch.isalnum() and not ch.isspace()


_TIME = re.compile(r"[0-9年月日:\-/. ~]*[0-9][0-9年月日:\-/. ~]*")
_AMOUNT = re.compile(r"[¥￥$]?\d{1,10}(\.\d+)?元?")
# type -> (limit, the characters or the whole value the type allows)
RULES = {
    "thing": (20, lambda v: all(ch.isprintable() for ch in v)),
    "character_string": (32, lambda v: all((ch.isascii() and ch.isalnum()) or _sym(ch)
                                           for ch in v)),
    "number": (32, lambda v: re.fullmatch(r"\d+(\.\d+)?", v) is not None),
    "letter": (32, lambda v: v.isascii() and v.isalpha()),
    "symbol": (5, lambda v: all(_sym(ch) for ch in v)),
    "time": (32, lambda v: _TIME.fullmatch(v) is not None),
    "date": (32, lambda v: _TIME.fullmatch(v) is not None),
    "amount": (15, lambda v: _AMOUNT.fullmatch(v) is not None),
    "phone_number": (17, lambda v: all(ch.isdigit() or _sym(ch) for ch in v)),
    "car_number": (8, lambda v: all(ch.isascii() and ch.isalnum() for ch in v[1:-1])),
    "name": (20, lambda v: all(_han(ch) or (ch.isascii() and ch.isalpha()) or _sym(ch)
                               or ch in " ·" for ch in v)),
    "phrase": (5, lambda v: all(_han(ch) for ch in v)),
}


def field_type(key: str) -> str | None:
    """The type a field key names (`thing1` -> thing), None for untyped keys (`keyword1`)."""
    base = key.rstrip("0123456789")
    return base if base in RULES else None


def _limit(kind: str, value: str) -> int:
    if kind == "name" and any(_han(ch) for ch in value):
        return 10
    return RULES[kind][0]


def field_problem(key: str, value, subscribe: bool) -> str | None:
    """Why WeChat refuses this field (47003), or None."""
    kind = field_type(key)
    if not isinstance(value, str):
        return f"data.{key}.value is not a string"
    if subscribe and (not value or "\n" in value or "\r" in value):
        return f"data.{key}.value invalid (empty or a line break)"
    if kind is None:
        return f"data.{key} is not a typed field" if subscribe else None
    text = value if subscribe else re.sub(r"[\r\n]+", "", value)
    if subscribe and len(text) > _limit(kind, text):
        return f"data.{key}.value invalid (over {_limit(kind, text)} characters)"
    return None if RULES[kind][1](text) else f"data.{key}.value invalid ({kind})"


def shown_fields(data: dict) -> dict:
    """What the phone shows of a template message: no first/remark or line breaks, 20 each."""
    shown = {}
    for key, field_ in data.items():
        if key in NOT_SHOWN:
            continue
        text = re.sub(r"\s*[\r\n]+\s*", " ", str(field_.get("value", ""))).strip()
        shown[key] = text if len(text) <= SHOWN else text[:SHOWN - 1] + "…"
    return shown


@dataclass
class Fault:
    """One injected misbehaviour for calls to `api` (or '*'), `times` times (None: always)."""

    api: str
    errcode: int | None = None
    status: int | None = None
    delay: float = 0.0
    times: int | None = 1
    openid: str | None = None


@dataclass
class Sent:
    """A message or menu the fake accepted."""

    api: str
    openid: str | None
    payload: dict
    msgid: int | None = None
    at: float = field(default_factory=time.monotonic)

    @property
    def shown(self) -> dict:
        """The fields a phone shows of a template message or subscription notice."""
        return shown_fields(self.payload.get("data") or {})


MEDIA_GET = "/cgi-bin/media/get"
MEDIA_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "audio/amr": "amr"}


class _MediaApi:
    """media/get (GET): a message's photo or recording, kept by WeChat for three days.

    `fake.add_media(id, content, type)` puts one there; `fake.delete_media(id)` plays the three
    days passing; an unknown or deleted id answers 40007 "invalid media_id". Faults injected
    for the api "media" (an errcode, an HTTP status, a delay) make it fail for that many calls.
    Every call is in `fake.calls` as ("media", media_id).
    """

    def add_media(self, media_id: str, content: bytes, content_type: str) -> None:
        """WeChat holds this file under `media_id`."""
        with self.lock:
            self.media[media_id] = (content, content_type)

    def delete_media(self, media_id: str) -> None:
        """WeChat deleted the file (three days after the message): 40007 from now on."""
        with self.lock:
            self.media.pop(media_id, None)

    def media_calls(self, media_id: str | None = None) -> int:
        """How many media/get calls were answered (for one media id, or all)."""
        with self.lock:
            return sum(1 for api, key in self.calls
                       if api == "media" and media_id in (None, key))

    def media_get(self, query: dict) -> tuple[int, dict | tuple[bytes, str, str]]:
        """(status, JSON error) or (200, (file, Content-Type, file name))."""
        media_id = (query.get("media_id") or [""])[0]
        fault = self._take_fault("media", None)
        with self.lock:
            self.calls.append(("media", media_id))
        if self.latency or (fault and fault.delay):
            time.sleep(self.latency + (fault.delay if fault else 0.0))
        if fault and fault.status:
            return fault.status, {"errcode": -1, "errmsg": "injected HTTP error"}
        if fault and fault.errcode is not None:
            return 200, _err(fault.errcode)
        problem = self._check_token((query.get("access_token") or [""])[0])
        if problem:
            return 200, _err(problem)
        with self.lock:
            found = self.media.get(media_id)
        if found is None:
            return 200, {"errcode": 40007, "errmsg": "invalid media_id"}
        content, kind = found
        return 200, (content, kind, f"{media_id}.{MEDIA_EXTENSIONS.get(kind, 'bin')}")


class FakeWeChat(_MediaApi):
    """The fake API's state and server; use as a context manager or start()/stop()."""

    def __init__(self, appid: str = "wxfakeappid", secret: str = "fake-secret",
                 latency: float = 0.0, token_ttl: int = 7200):
        self.appid, self.secret, self.latency, self.token_ttl = appid, secret, latency, token_ttl
        self.lock = threading.Lock()
        self.tokens: dict[str, float] = {}   # token -> expiry (monotonic)
        self.current: str | None = None
        self.faults: list[Fault] = []
        self.sent: list[Sent] = []
        self.token_requests: list[bool] = []  # force_refresh of each stable_token call
        self.calls: list[tuple[str, str | None]] = []   # (api, openid) of every call answered
        self.menu: dict | None = None
        self.unknown: list[str] = []       # paths called that the real API does not have here
        self.connections: set = set()      # client (host, port) pairs: pooling keeps this small
        self.inflight = self.peak_inflight = 0
        self.visitor: str | None = None    # who opens a page (web login) unless a cookie says
        self.codes: dict[str, str] = {}    # web-login code -> openid, each used once
        self.logins: list[str] = []        # openids whose code was exchanged, in order
        self._msgids = itertools.count(1_000_001)
        self.server: ThreadingHTTPServer | None = None
        self.media: dict[str, tuple[bytes, str]] = {}   # media/get: id -> (file, type)
        # (openid, template id) -> one-time acceptances left, or None for a long-term one
        self.acceptances: dict[tuple[str, str], int | None] = {}
        self.jsapi_ticket = "jsapi-" + secrets.token_hex(12)
        self.ticket_requests = 0

    # ---- life ----------------------------------------------------------------------------
    def start(self, port: int = 0) -> "FakeWeChat":
        """Serve on 127.0.0.1 (an ephemeral port by default) in a daemon thread."""
        self.server = _Server(("127.0.0.1", port), _Handler)
        self.server.fake = self
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True,
                         name="fake-wechat").start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def base(self) -> str:
        """The WECHAT_API_BASE to configure."""
        return f"http://127.0.0.1:{self.server.server_port}/"

    # ---- control -------------------------------------------------------------------------
    def inject(self, api: str, *, errcode: int | None = None, status: int | None = None,
               delay: float = 0.0, times: int | None = 1, openid: str | None = None) -> None:
        """Misbehave on the next `times` calls to `api` (custom, template, subscribe, ticket,
        token, menu or *)."""
        with self.lock:
            self.faults.append(Fault(api, errcode, status, delay, times, openid))

    def accept(self, openid: str, template_id: str, once: bool = False) -> None:
        """The user tapped 允许 on a subscription pop-up: a long-term or one more one-time
        acceptance."""
        with self.lock:
            if not once:
                self.acceptances[(openid, template_id)] = None
            else:
                left = self.acceptances.get((openid, template_id)) or 0
                self.acceptances[(openid, template_id)] = left + 1

    def refuse(self, openid: str, template_id: str) -> None:
        """The user turned the notice off (or never accepted it): bizsend answers 43101."""
        with self.lock:
            self.acceptances.pop((openid, template_id), None)

    def expire_tokens(self) -> None:
        """Every token issued so far expires now (calls answer 42001)."""
        with self.lock:
            self.tokens = {t: 0.0 for t in self.tokens}
            self.current = None

    def messages(self, openid: str | None = None, api: str | None = None) -> list[Sent]:
        """Accepted messages, optionally for one openid and/or one api."""
        with self.lock:
            return [s for s in self.sent if (openid is None or s.openid == openid)
                    and (api is None or s.api == api)]

    def shown(self, openid: str | None = None) -> list[dict]:
        """What phones show of the template messages and subscription notices accepted."""
        return [s.shown for s in self.messages(openid) if s.api in ("template", "subscribe")]

    def stats(self) -> dict:
        """Counts for the benchmark."""
        with self.lock:
            by_api: dict[str, int] = {}
            for s in self.sent:
                by_api[s.api] = by_api.get(s.api, 0) + 1
            return {"sent": len(self.sent), "by_api": by_api,
                    "openids": len({s.openid for s in self.sent}),
                    "token_requests": len(self.token_requests),
                    "peak_inflight": self.peak_inflight, "connections": len(self.connections)}

    # ---- the web login (snsapi_base) -----------------------------------------------------
    def authorize(self, query: dict, cookie_openid: str | None) -> tuple[int, str]:
        """(302, where to) with a code for the visitor; (400, why) for a call WeChat refuses."""
        one = {k: v[0] for k, v in query.items()}
        if one.get("appid") != self.appid:
            return 400, "appid 错误"
        if one.get("response_type") != "code" or one.get("scope") not in (
                "snsapi_base", "snsapi_userinfo") or not one.get("redirect_uri"):
            return 400, "参数错误"
        openid = cookie_openid or self.visitor
        if not openid:
            return 400, "请在微信客户端打开链接"
        code = "code-" + secrets.token_hex(8)
        with self.lock:
            self.codes[code] = openid
        back = one["redirect_uri"]
        sep = "&" if "?" in back else "?"
        return 302, back + sep + urlencode({"code": code, "state": one.get("state", "")})

    def oauth_token(self, query: dict) -> dict:
        """sns/oauth2/access_token: the openid behind a code (once), or WeChat's error."""
        one = {k: v[0] for k, v in query.items()}
        if one.get("appid") != self.appid:
            return _err(40013)
        if one.get("secret") != self.secret:
            return _err(40125)
        if one.get("grant_type") != "authorization_code":
            return _err(47001)
        with self.lock:
            openid = self.codes.pop(one.get("code", ""), None)
            if openid is None:
                return _err(40163 if one.get("code", "").startswith("code-") else 40029)
            self.logins.append(openid)
        return {"access_token": "web-" + secrets.token_hex(8), "expires_in": 7200,
                "refresh_token": "refresh-" + secrets.token_hex(8), "openid": openid,
                "scope": "snsapi_base"}

    # ---- behaviour -----------------------------------------------------------------------
    def handle(self, path: str, query: dict, body: dict) -> tuple[int, dict]:
        """Answer one call: (HTTP status, JSON body)."""
        api = APIS.get(path)
        if api is None:
            with self.lock:
                self.unknown.append(path)
            return 404, {"errcode": 404, "errmsg": f"no such API {path}"}
        openid = body.get("touser")
        fault = self._take_fault(api, openid)
        with self.lock:
            self.calls.append((api, openid))
            self.inflight += 1
            self.peak_inflight = max(self.peak_inflight, self.inflight)
        try:
            if self.latency or (fault and fault.delay):
                time.sleep(self.latency + (fault.delay if fault else 0.0))
            return self._answer(api, openid, query, body, fault)
        finally:
            with self.lock:
                self.inflight -= 1

    def _answer(self, api, openid, query, body, fault) -> tuple[int, dict]:
        if fault and fault.status:
            return fault.status, {"errcode": -1, "errmsg": "injected HTTP error"}
        if fault and fault.errcode is not None:
            return 200, _err(fault.errcode)
        if api == "token":
            return 200, self._token(body)
        problem = self._check_token(query.get("access_token", [""])[0])
        if problem:
            return 200, _err(problem)
        return 200, self._accept(api, openid, body)

    def _take_fault(self, api: str, openid: str | None) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.api in (api, "*") and fault.openid in (None, openid):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self.faults.remove(fault)
                    return fault
        return None

    def _token(self, body: dict) -> dict:
        if body.get("appid") != self.appid or body.get("secret") != self.secret:
            return _err(40125)
        force = bool(body.get("force_refresh"))
        with self.lock:
            self.token_requests.append(force)
            now = time.monotonic()
            if force or not self.current or self.tokens.get(self.current, 0) <= now:
                if force and self.current:
                    self.tokens[self.current] = 0.0   # a forced refresh ends the old token
                self.current = "tok-" + secrets.token_hex(8)
                self.tokens[self.current] = now + self.token_ttl
            left = int(self.tokens[self.current] - now)
            return {"access_token": self.current, "expires_in": left}

    def _check_token(self, token: str) -> int | None:
        with self.lock:
            if token not in self.tokens:
                return 40001
            return 42001 if self.tokens[token] <= time.monotonic() else None

    def _accept(self, api: str, openid: str | None, body: dict) -> dict:
        if api == "ticket":
            return self._ticket(body)
        if api == "custom" and not (body.get("msgtype") == "text" and openid
                                    and (body.get("text") or {}).get("content")):
            return _err(47001)
        if api in ("template", "subscribe") and not (openid and body.get("template_id")
                                                     and isinstance(body.get("data"), dict)):
            return _err(47001)
        problem = _data_problem(api, body)
        if problem:
            return {"errcode": 47003, "errmsg": f"argument invalid! {problem}"}
        if api == "subscribe" and not self._use_acceptance(openid, body["template_id"]):
            return _err(43101)
        with self.lock:
            msgid = next(self._msgids) if api in ("template", "subscribe") else None
            if api == "menu":
                self.menu = body
            self.sent.append(Sent(api, openid, body, msgid))
        return {**_err(0), **({"msgid": msgid} if msgid else {})}


    def _use_acceptance(self, openid: str, template_id: str) -> bool:
        """Whether the user accepted this notice; a one-time acceptance is used up."""
        key = (openid, template_id)
        with self.lock:
            if key not in self.acceptances:
                return False
            left = self.acceptances[key]
            if left is None:
                return True
            if left <= 1:
                del self.acceptances[key]
            else:
                self.acceptances[key] = left - 1
            return True

    def _ticket(self, query: dict) -> dict:
        """ticket/getticket: the JS-SDK's jsapi_ticket (type=jsapi only)."""
        if query.get("type") != "jsapi":
            return _err(40097)
        with self.lock:
            self.ticket_requests += 1
            return {**_err(0), "ticket": self.jsapi_ticket, "expires_in": 7200}


def live_settings(fake: FakeWeChat, **overrides) -> dict:
    """App settings that leave sandbox mode for this fake, with test-sized timings.

    The timeout leaves room for a loaded CI machine (a fake that answered after 0.5 s made a
    download wait for its first retry); tests of timing out set their own."""
    settings = {"wechat_api_base": fake.base, "wechat_oauth_base": fake.base,
                "wechat_appid": fake.appid,
                "wechat_secret": fake.secret, "wechat_template_notice": "TPL-NOTICE",
                "quiet_hours": "off", "wechat_timeout_seconds": 2.0,
                "delivery_lease_seconds": 8.0, "delivery_sweep_seconds": 0.05,
                "delivery_backoff_seconds": 0.05, "delivery_max_attempts": 3}
    settings.update(overrides)
    return settings


def _data_problem(api: str, body: dict) -> str | None:
    """The first field WeChat would refuse (templates and subscription notices)."""
    if api not in ("template", "subscribe"):
        return None
    for key, field_ in body["data"].items():
        value = field_.get("value") if isinstance(field_, dict) else None
        problem = field_problem(key, value, subscribe=api == "subscribe")
        if problem:
            return problem
    return None


def _err(code: int) -> dict:
    return {"errcode": code, "errmsg": ERRMSG.get(code, "error")}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512
    fake: FakeWeChat

    def handle_error(self, request, client_address):
        """A client that vanished (killed mid-call in the tests) is not an error here."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive, as the real API
    disable_nagle_algorithm = True  # else Nagle + delayed ACK add 40 ms to every answer

    def do_POST(self):  # noqa: N802 - http.server's naming
        """A WeChat API call."""
        url = urlparse(self.path)
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw.decode("utf-8") or "{}")
        except (UnicodeDecodeError, ValueError):
            self._answer(200, _err(47001))
            return
        fake = self.server.fake
        with fake.lock:
            fake.connections.add(self.client_address)
        status, answer = fake.handle(url.path, parse_qs(url.query), body)
        self._answer(status, answer)

    def do_GET(self):  # noqa: N802
        """The web login's two calls, the JS-SDK ticket, and counts for the benchmark."""
        url, fake = urlparse(self.path), self.server.fake
        if url.path == OAUTH_AUTHORIZE:
            status, where = fake.authorize(parse_qs(url.query), self._cookie(VISITOR_COOKIE))
            self._redirect(where) if status == 302 else self._page(status, where)
        elif url.path == OAUTH_TOKEN:
            self._answer(200, fake.oauth_token(parse_qs(url.query)))
        elif APIS.get(url.path) == "ticket":
            query = parse_qs(url.query)
            status, answer = fake.handle(url.path, query, {k: v[0] for k, v in query.items()
                                                           if k != "access_token"})
            self._answer(status, answer)
        elif url.path == MEDIA_GET:
            status, answer = fake.media_get(parse_qs(url.query))
            self._file(*answer) if isinstance(answer, tuple) else self._answer(status, answer)
        elif url.path == "/_fake/stats":
            self._answer(200, fake.stats())
        else:
            self._answer(404, {"errcode": 404, "errmsg": "not found"})

    def _file(self, content: bytes, content_type: str, filename: str) -> None:
        """A media/get answer: the file itself, as WeChat sends it."""
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-disposition", f'attachment; filename="{filename}"')
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def _cookie(self, name: str) -> str | None:
        try:
            jar = SimpleCookie(self.headers.get("Cookie") or "")
        except CookieError:
            return None
        return jar[name].value if name in jar else None

    def _redirect(self, where: str) -> None:
        self.send_response(302)
        self.send_header("Location", where)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _page(self, status: int, text: str) -> None:
        data = f"<!doctype html><meta charset=utf-8><p>{text}</p>".encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _answer(self, status: int, answer: dict) -> None:
        data = json.dumps(answer, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self._headers_buffer.append(b"\r\n")   # end_headers() without its separate flush
        try:
            self.wfile.write(b"".join(self._headers_buffer) + data)
            self._headers_buffer = []
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test): nothing to tell it

    def log_message(self, *args):
        """Quiet: tests read the fake's state, not its access log."""


def main() -> None:
    """Serve until killed, printing the base URL once ready."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--appid", default="wxfakeappid")
    parser.add_argument("--secret", default="fake-secret")
    args = parser.parse_args()
    fake = FakeWeChat(args.appid, args.secret, latency=args.latency).start(args.port)
    print(f"READY {fake.base}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
