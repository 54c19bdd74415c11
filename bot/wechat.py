"""The one WeChat API client: every call under WECHAT_API_BASE, one shared access token.

wechatpy builds the request bodies (`WeChatMessage`, `WeChatMenu`) and the JS-SDK's signature
(`WeChatJSAPI`); this module replaces the parts of wechatpy's client we must not inherit: its
hard-coded token URL, its calls without a timeout, its token refresh without a lock, its 40001
retry that can recurse without end, and its per-process jsapi_ticket cache.
Every API answer becomes a `Result` with one of seven outcomes; API errors are never raised.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from zoneinfo import ZoneInfo

from urllib.parse import urlencode, urlsplit
from urllib.request import getproxies, proxy_bypass

import urllib3
from redis.exceptions import LockError
from requests import certs
from wechatpy.client.api import WeChatJSAPI, WeChatMenu, WeChatMessage
from wechatpy.utils import random_string

from bot.kv import RedisDown

logger = logging.getLogger(__name__)


class Outcome(str, Enum):
    """What an API answer means for the message that was being sent."""

    SENT = "sent"
    RETRY_LATER = "retry-later"      # busy, rate-limited, 5xx, timeout: back off and retry
    WINDOW_CLOSED = "window-closed"  # 45015: the 48-hour chat window is closed
    QUOTA_SPENT = "quota-spent"      # 45047: the chat window's message count is used up
    UNSUBSCRIBED = "unsubscribed"    # 43004: the user no longer follows the account
    REFUSED = "refused"              # WeChat will never take this message (bad openid, body…)
    FATAL = "fatal"                  # the account's configuration is wrong (secret, IP list…)


@dataclass(frozen=True)
class Result:
    """The outcome of one API call, with WeChat's code and message for the record."""

    outcome: Outcome
    code: int | None = None
    reason: str = ""
    msgid: str | None = None
    sandbox: bool = False

    @property
    def ok(self) -> bool:
        """True when WeChat accepted the call."""
        return self.outcome is Outcome.SENT


TOKEN_ERRORS = {40001, 40014, 42001}  # invalid credential, invalid token, expired token
CODE_OUTCOMES = {
    0: Outcome.SENT,
    45015: Outcome.WINDOW_CLOSED,
    45047: Outcome.QUOTA_SPENT,
    43004: Outcome.UNSUBSCRIBED,
    -1: Outcome.RETRY_LATER,     # system busy
    45009: Outcome.RETRY_LATER,  # daily API quota reached
    45011: Outcome.RETRY_LATER,  # API called too often
    # A token still rejected after one refresh: a clock or propagation hiccup, retry later.
    **{code: Outcome.RETRY_LATER for code in TOKEN_ERRORS},
}
# Wrong appid/secret, IP not on the whitelist, API not authorised, secret frozen.
FATAL_CODES = {40002, 40013, 40125, 40164, 40243, 41002, 41004, 48001, 50001, 89503}


def outcome_of(code: int) -> Outcome:
    """Map a WeChat errcode to an outcome; unknown codes refuse the message."""
    if code in CODE_OUTCOMES:
        return CODE_OUTCOMES[code]
    return Outcome.FATAL if code in FATAL_CODES else Outcome.REFUSED


class ApiError(Exception):
    """Internal: carries the Result of a failed call up to the public method."""

    def __init__(self, result: Result):
        super().__init__(result.reason)
        self.result = result


def _fail(outcome: Outcome, reason: str, code: int | None = None) -> ApiError:
    return ApiError(Result(outcome, code, reason))


JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}


class Http:
    """JSON over one pool of keep-alive connections, with a timeout on every call.

    urllib3 is requests' own transport; calling it directly halves the CPU a send costs, which
    is what bounds a worker's throughput.
    """

    def __init__(self, base: str, timeout: float, pool_size: int):
        self.base = base.rstrip("/") + "/"
        self.limit = timeout
        self.timeout = urllib3.Timeout(connect=min(3.0, timeout), read=timeout)
        self.pool = _pool_manager(self.base, pool_size)

    def post(self, path: str, payload: dict, params: dict | None = None) -> dict:
        """POST JSON (UTF-8, not escaped: WeChat shows \\u escapes literally); return the answer."""
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        return self._request("POST", path, params, body=body, headers=JSON_HEADERS)

    def get(self, path: str, params: dict | None = None) -> dict:
        """GET with query parameters; return the answer."""
        return self._request("GET", path, params)

    def _request(self, method: str, path: str, params: dict | None, **kwargs) -> dict:
        url = self.base + path + (f"?{urlencode(params)}" if params else "")
        try:
            resp = self.pool.request(method, url, timeout=self.timeout, retries=False,
                                     **kwargs)
        except urllib3.exceptions.TimeoutError:
            raise _fail(Outcome.RETRY_LATER, f"no answer within {self.limit:g}s") from None
        except urllib3.exceptions.HTTPError as exc:
            raise _fail(Outcome.RETRY_LATER, f"connection failed: {type(exc).__name__}") from None
        return self._json(resp.status, resp.data)

    def _json(self, status: int, raw: bytes) -> dict:
        if status >= 500 or status == 429:
            raise _fail(Outcome.RETRY_LATER, f"HTTP {status}")
        if status >= 400:
            raise _fail(Outcome.FATAL, f"HTTP {status} (is WECHAT_API_BASE right?)")
        try:
            data = json.loads(raw.decode("utf-8"))
        except ValueError:
            raise _fail(Outcome.RETRY_LATER, "answer is not JSON") from None
        if not isinstance(data, dict):
            raise _fail(Outcome.RETRY_LATER, "answer is not a JSON object")
        return data

    def close(self) -> None:
        """Close pooled connections."""
        self.pool.clear()


def _pool_manager(base: str, size: int):
    """Connections to the API host, through the proxy the environment names for it, if any."""
    parts = urlsplit(base)
    proxy = None if proxy_bypass(parts.hostname or "") else getproxies().get(parts.scheme)
    options = {"num_pools": 2, "maxsize": size, "block": False, "ca_certs": certs.where()}
    return urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)


def errcode_of(data: dict) -> int:
    """WeChat's errcode as an int (absent means success)."""
    try:
        return int(data.get("errcode", 0) or 0)
    except (TypeError, ValueError):
        return -1


class ForceRation:
    """Forced stable_token refreshes, shared by every process: one per 30 s, 20 a day.

    A forced refresh ends the token every other process is using, and WeChat allows 20 a day,
    30 s apart: a storm of 40001 answers must not force one per delivery cycle (issue 13).
    """

    GAP = 30                               # seconds between two forced refreshes
    DAILY = 20                             # WeChat's daily allowance
    DAY_ZONE = ZoneInfo("Asia/Shanghai")   # WeChat's daily quotas reset at Beijing midnight

    def __init__(self, redis, appid: str, clock=time.time):
        self.redis, self.clock = redis, clock
        self.gap_key = f"yinling:wechat:token-force-gap:{appid}"
        self.day_key = f"yinling:wechat:token-force-day:{appid}"
        self._last: float | None = None       # this process's ration while Redis is down
        self._used: tuple[str, int] = ("", 0)
        self._mutex = threading.Lock()
        self._warned = ""   # the limit last warned about, until a forced refresh is allowed

    def spend(self) -> None:
        """Use one forced refresh, or raise RETRY_LATER when none is left for now."""
        try:
            spent = self._spend_shared()
        except RedisDown:
            spent = self._spend_local()
        if not spent:
            self._warned = ""
            return
        if spent != self._warned:   # one line per dry spell, not one per delivery of a storm
            logger.warning("access token rejected and no forced refresh left (%s): "
                           "deliveries will retry later", spent)
            self._warned = spent
        raise _fail(Outcome.RETRY_LATER, f"access token rejected; forced refresh rationed "
                                         f"({spent})")

    def _spend_shared(self) -> str:
        """Take from the Redis ration; '' when taken, else which limit is reached."""
        key = f"{self.day_key}:{self._day()}"
        if int(self.redis.get(key) or 0) >= self.DAILY:
            return f"{self.DAILY} a day"   # checked first so that the right limit is reported
        # SET NX EX is atomic across processes, and Redis's own clock ends the gap.
        if not self.redis.set(self.gap_key, b"1", nx=True, ex=self.GAP):
            return f"one per {self.GAP} s"
        with self.redis.pipeline() as pipe:   # the day's count, kept past any time zone's day
            used, _ = pipe.incr(key).expire(key, 2 * 86400).execute()
        return "" if used <= self.DAILY else f"{self.DAILY} a day"

    def _spend_local(self) -> str:
        """Take from this process's ration (Redis is down); '' when taken, else why not."""
        with self._mutex:
            now, day = self.clock(), self._day()
            if self._last is not None and now - self._last < self.GAP:
                return f"one per {self.GAP} s"
            used = self._used[1] + 1 if self._used[0] == day else 1
            if used > self.DAILY:
                return f"{self.DAILY} a day"
            self._last, self._used = now, (day, used)
            return ""

    def _day(self) -> str:
        """Today's date in WeChat's time zone."""
        return datetime.fromtimestamp(self.clock(), self.DAY_ZONE).date().isoformat()


def _shared(redis_client, key: str) -> tuple[str | None, float]:
    """(value, seconds it still lives) of a token or ticket all processes share in Redis;
    (None, 0) when there is none or Redis cannot be reached."""
    try:
        with redis_client.pipeline(transaction=False) as pipe:
            raw, ttl_ms = pipe.get(key).pttl(key).execute()
    except RedisDown:
        return None, 0.0
    if not raw:
        return None, 0.0
    return (raw.decode() if isinstance(raw, bytes) else str(raw)), (ttl_ms or 0) / 1000


class TokenService:
    """The account's access token: cached in Redis for every process, refreshed under a lock.

    Tokens come from `cgi-bin/stable_token`. A rejected token is first compared with the shared
    one (another process may have replaced it); then normal mode, which keeps the token other
    processes use; force mode only when the platform hands back the very token it just
    rejected, and only as the shared `ForceRation` allows.
    """

    EARLY = 300        # stop using a token this many seconds before WeChat says it expires
    LOCAL_MAX = 60.0   # re-read the shared token at least this often

    def __init__(self, redis, http: Http, appid: str, secret: str, timeout: float):
        self.redis, self.http = redis, http
        self.appid, self.secret = appid, secret
        self.key = f"yinling:wechat:token:{appid}"
        self.lock_key = f"yinling:wechat:token-lock:{appid}"
        self.lock_seconds = 3 * timeout + 1   # a holder that died frees the lock by then
        self._local: tuple[str | None, float] = (None, 0.0)
        self._mutex = threading.Lock()
        self.ration = ForceRation(redis, appid)

    def get(self) -> str:
        """A token believed valid (from this process, Redis, or a fresh fetch)."""
        token, until = self._local
        if token and time.monotonic() < until:
            return token
        token = self._read_shared()
        return token or self._fetch_once(stale=None)

    def refresh(self, stale: str) -> str:
        """A token other than the rejected `stale`: the shared one if it differs, else fetched."""
        current = self._read_shared()
        if current and current != stale:
            return current   # already replaced by another process: no fetch, no lock wait
        return self._fetch_once(stale)

    def _fetch_once(self, stale: str | None) -> str:
        """A token other than `stale`: one process fetches it, the others wait and share it."""
        try:
            lock = self.redis.lock(self.lock_key, timeout=self.lock_seconds, sleep=0.05,
                                   blocking_timeout=self.lock_seconds, thread_local=False)
            if not lock.acquire():
                return self._after_waiting(stale)
        except RedisDown:
            logger.warning("Redis down: fetching the access token without the shared lock")
            with self._mutex:
                return self._fetch_and_store(stale)
        try:
            current = self._read_shared()
            if current and current != stale:
                return current   # another process refreshed it while we waited
            return self._fetch_and_store(stale)
        finally:
            try:
                lock.release()
            except (LockError, *RedisDown):
                logger.warning("token lock expired before release (slow refresh?)")

    def _after_waiting(self, stale: str | None) -> str:
        current = self._read_shared()
        if current and current != stale:
            return current
        raise _fail(Outcome.RETRY_LATER, "access token refresh by another process timed out")

    def _read_shared(self) -> str | None:
        token, seconds = _shared(self.redis, self.key)
        if token:
            self._remember(token, seconds)
        return token

    def _fetch_and_store(self, stale: str | None) -> str:
        """Fetch in normal mode (forced only if it hands back `stale`) and share the token."""
        token, expires_in = self._fetch(force=False)
        if stale and token == stale:
            token, expires_in = self._force()
        life = max(expires_in - self.EARLY, 30)
        try:
            self.redis.set(self.key, token.encode(), ex=int(life))
        except RedisDown:
            logger.warning("Redis down: access token kept in this process only")
        self._remember(token, life)
        return token

    def _force(self) -> tuple[str, int]:
        """A forced refresh, if the shared ration has one left (else RETRY_LATER)."""
        self.ration.spend()
        logger.warning("stable_token returned the rejected token again: forcing a new one")
        return self._fetch(force=True)

    def _fetch(self, force: bool) -> tuple[str, int]:
        payload = {"grant_type": "client_credential", "appid": self.appid,
                   "secret": self.secret, "force_refresh": force}
        data = self.http.post("cgi-bin/stable_token", payload)
        code = errcode_of(data)
        if code != 0 or not data.get("access_token"):
            outcome = Outcome.RETRY_LATER if outcome_of(code) is Outcome.RETRY_LATER \
                else Outcome.FATAL
            raise _fail(outcome, f"stable_token: {code} {data.get('errmsg', '')}".strip(), code)
        logger.info("access token fetched for %s (force=%s, expires in %ss)", self.appid, force,
                    data.get("expires_in"))
        return str(data["access_token"]), int(data.get("expires_in") or 7200)

    def _remember(self, token: str, seconds: float) -> None:
        self._local = (token, time.monotonic() + min(seconds, self.LOCAL_MAX))


class JsapiTickets:
    """The JS-SDK's jsapi_ticket: one per account, shared by every process through Redis.

    A ticket lives 7200 s and `ticket/getticket` may be called only so often a day, so pages
    sign with the shared ticket; one process fetches a new one under a lock while the others
    wait for it (as TokenService does for the access token).
    """

    EARLY = 300        # stop using a ticket this many seconds before it expires
    LOCAL_MAX = 60.0   # re-read the shared ticket at least this often

    def __init__(self, redis, fetch, appid: str, timeout: float):
        self.redis, self.fetch = redis, fetch   # fetch() -> (ticket, expires_in)
        self.key = f"yinling:wechat:jsapi-ticket:{appid}"
        self.lock_key = f"yinling:wechat:jsapi-ticket-lock:{appid}"
        self.lock_seconds = 3 * timeout + 1
        self._local: tuple[str | None, float] = (None, 0.0)
        self._mutex = threading.Lock()

    def get(self) -> str:
        """A ticket believed valid; raises ApiError when WeChat gives none now."""
        ticket, until = self._local
        if ticket and time.monotonic() < until:
            return ticket
        return self._read_shared() or self._fetch_once()

    def _fetch_once(self) -> str:
        try:
            lock = self.redis.lock(self.lock_key, timeout=self.lock_seconds, sleep=0.05,
                                   blocking_timeout=self.lock_seconds, thread_local=False)
            if not lock.acquire():
                return self._read_shared() or self._busy()
        except RedisDown:
            with self._mutex:
                return self._fetch_and_store()
        try:
            return self._read_shared() or self._fetch_and_store()
        finally:
            try:
                lock.release()
            except (LockError, *RedisDown):
                logger.warning("jsapi_ticket lock expired before release (slow fetch?)")

    @staticmethod
    def _busy() -> str:
        raise _fail(Outcome.RETRY_LATER, "jsapi_ticket fetch by another process timed out")

    def _read_shared(self) -> str | None:
        ticket, seconds = _shared(self.redis, self.key)
        if ticket:
            self._local = (ticket, time.monotonic() + min(seconds, self.LOCAL_MAX))
        return ticket

    def _fetch_and_store(self) -> str:
        ticket, expires_in = self.fetch()
        life = max(expires_in - self.EARLY, 30)
        try:
            self.redis.set(self.key, ticket.encode(), ex=int(life))
        except RedisDown:
            logger.warning("Redis down: jsapi_ticket kept in this process only")
        self._local = (ticket, time.monotonic() + min(life, self.LOCAL_MAX))
        return ticket


def jsapi_signature(ticket: str, noncestr: str, timestamp, url: str) -> str:
    """WeChat's JS-SDK signature: sha1 of jsapi_ticket, noncestr, timestamp and url, sorted
    and joined with & (wechatpy's implementation)."""
    return WeChatJSAPI().get_jsapi_signature(noncestr, ticket, timestamp, url)


def jsapi_config(appid: str, ticket: str, url: str, *, timestamp: int | None = None,
                 noncestr: str | None = None) -> dict:
    """What wx.config needs for a page at `url` (signed without its #fragment)."""
    timestamp = int(time.time()) if timestamp is None else int(timestamp)
    noncestr = noncestr or random_string(16)
    return {"appId": appid, "timestamp": timestamp, "nonceStr": noncestr,
            "signature": jsapi_signature(ticket, noncestr, timestamp, url.split("#", 1)[0])}


class WeChatClient:
    """Calls the WeChat API; public methods return a Result and never raise for API errors."""

    sandbox = False

    def __init__(self, settings, redis, pool_size: int | None = None):
        size = pool_size or settings.delivery_concurrency + 4
        self.http = Http(settings.wechat_api_base, settings.wechat_timeout_seconds, size)
        self.tokens = TokenService(redis, self.http, settings.wechat_appid,
                                   settings.wechat_secret, settings.wechat_timeout_seconds)
        self._message = WeChatMessage(self)   # wechatpy's request builders, on our transport
        self._menu = WeChatMenu(self)
        self._jsapi = WeChatJSAPI(self)
        self.appid = settings.wechat_appid
        self.tickets = JsapiTickets(redis, self._fetch_ticket, settings.wechat_appid,
                                    settings.wechat_timeout_seconds)

    # ---- the transport wechatpy's builders call ------------------------------------------
    def post(self, url: str, data: dict | None = None, **_ignored) -> dict:
        """POST cgi-bin/<url> with the token; a token error replaces it once and retries once."""
        return self._call(lambda path, token: self.http.post(
            path, data or {}, params={"access_token": token}), url)

    def get(self, url: str, params: dict | None = None, **_ignored) -> dict:
        """GET cgi-bin/<url> with the token (and `params`); the same single token retry."""
        return self._call(lambda path, token: self.http.get(
            path, {**(params or {}), "access_token": token}), url)

    def _call(self, send, url: str) -> dict:
        path = url if url.startswith("cgi-bin/") else f"cgi-bin/{url}"
        token = self.tokens.get()
        answer = send(path, token)
        if errcode_of(answer) in TOKEN_ERRORS:
            logger.info("%s: token rejected (%s), replacing it once", path, errcode_of(answer))
            token = self.tokens.refresh(stale=token)
            answer = send(path, token)
        code = errcode_of(answer)
        if code != 0:
            raise _fail(outcome_of(code), f"{code} {answer.get('errmsg', '')}".strip(), code)
        return answer

    # ---- public API ----------------------------------------------------------------------
    def send_text(self, openid: str, text: str) -> Result:
        """A customer-service text message (only inside the chat window)."""
        return self._result(lambda: self._message.send_text(openid, text))

    def send_template(self, openid: str, template_id: str, data: dict,
                      url: str | None = None) -> Result:
        """A template message opening `url` when tapped; the Result carries WeChat's msgid."""
        return self._result(lambda: self._message.send_template(openid, template_id, data,
                                                                url=url))

    def send_subscribe(self, openid: str, template_id: str, data: dict,
                       url: str | None = None) -> Result:
        """A subscription notice (message/subscribe/bizsend) opening `url` when tapped;
        43101 means the user has no acceptance (left) for this template."""
        body = {"touser": openid, "template_id": template_id, "data": data}
        if url:
            body["page"] = url   # for a web page; `miniprogram` would open a mini program
        return self._result(lambda: self.post("message/subscribe/bizsend", body))

    def jsapi_config(self, url: str) -> dict | None:
        """wx.config's appId, timestamp, nonceStr and signature for a page at `url`; None
        (logged) when WeChat gives no jsapi_ticket now."""
        try:
            ticket = self.tickets.get()
        except ApiError as err:
            logger.warning("no jsapi_ticket: %s (pages show no subscribe button)", err)
            return None
        return jsapi_config(self.appid, ticket, url)

    def _fetch_ticket(self) -> tuple[str, int]:
        answer = self._jsapi.get_ticket("jsapi")
        if not answer.get("ticket"):
            raise _fail(Outcome.RETRY_LATER, "ticket/getticket answered without a ticket")
        return str(answer["ticket"]), int(answer.get("expires_in") or 7200)

    def create_menu(self, menu: dict) -> Result:
        """Replace the custom menu."""
        return self._result(lambda: self._menu.create(menu))

    def create_qrcode(self, scene: str, expire_seconds: int) -> str:
        """A temporary parametric QR code (qrcode/create, QR_STR_SCENE): the URL it encodes.
        Raises ApiError when WeChat refuses."""
        answer = self.post("qrcode/create", {
            "expire_seconds": expire_seconds, "action_name": "QR_STR_SCENE",
            "action_info": {"scene": {"scene_str": scene}}})
        return answer["url"]

    def _result(self, call) -> Result:
        try:
            answer = call()
        except ApiError as err:
            return err.result
        msgid = answer.get("msgid")
        return Result(Outcome.SENT, 0, "ok", msgid=None if msgid is None else str(msgid))

    def close(self) -> None:
        """Close pooled connections."""
        self.http.close()


class SandboxClient:
    """Sandbox mode: the same calls, recorded in the log instead of sent."""

    sandbox = True

    def send_text(self, openid: str, text: str) -> Result:
        """Record a customer-service message."""
        logger.info("sandbox: chat message to %s (%d chars)", openid, len(text))
        return Result(Outcome.SENT, 0, "sandbox", sandbox=True)

    def send_template(self, openid: str, template_id: str, data: dict,
                      url: str | None = None) -> Result:
        """Record a template message."""
        logger.info("sandbox: template %s to %s%s", template_id, openid,
                    " with a page link" if url else "")
        return Result(Outcome.SENT, 0, "sandbox", sandbox=True)

    def send_subscribe(self, openid: str, template_id: str, data: dict,
                       url: str | None = None) -> Result:
        """Record a subscription notice."""
        logger.info("sandbox: subscription notice %s to %s", template_id, openid)
        return Result(Outcome.SENT, 0, "sandbox", sandbox=True)

    def jsapi_config(self, url: str) -> dict | None:
        """Sandbox: no account, so no JS-SDK (pages offer no subscribe button)."""
        return None

    def create_menu(self, menu: dict) -> Result:
        """Record a menu."""
        logger.info("sandbox: menu with %d buttons", len(menu.get("button", [])))
        return Result(Outcome.SENT, 0, "sandbox", sandbox=True)

    def create_qrcode(self, scene: str, expire_seconds: int) -> str:
        """Sandbox: a code only the chat simulator understands (send `[扫码]SCENE`)."""
        return f"sandbox-scan:{scene}"

    def close(self) -> None:
        """Nothing to close."""


def make_client(settings, redis):
    """The real client, or the sandbox one when no APPID/SECRET are configured."""
    return SandboxClient() if settings.sandbox else WeChatClient(settings, redis)


MENU_KEYS = ("MENU_FEES", "MENU_REPORT", "MENU_MY_ISSUES", "MENU_COURSES", "MENU_NOTICES",
             "MENU_HELP")


def check_menu(menu: dict) -> list[str]:
    """What WeChat would reject in a custom menu, plus any of our six click keys missing."""
    buttons = menu.get("button") if isinstance(menu, dict) else None
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        return ["a menu has 1 to 3 top-level buttons under 'button'"]
    problems, keys = [], []
    for top in buttons:
        subs = top.get("sub_button") or []
        problems += _check_button(top, limit=16, leaf=not subs)
        if len(subs) > 5:
            problems.append(f"{top.get('name')!r}: at most 5 sub-buttons")
        for sub in subs:
            problems += _check_button(sub, limit=60, leaf=True)
        keys += [b.get("key") for b in [top, *subs] if b.get("type") == "click"]
    missing = [k for k in MENU_KEYS if k not in keys]
    if missing:
        problems.append(f"click keys missing: {', '.join(missing)}")
    return problems


def _check_button(button: dict, limit: int, leaf: bool) -> list[str]:
    name = button.get("name") or ""
    problems = []
    if not name or len(name.encode("utf-8")) > limit:
        problems.append(f"button name {name!r} must be 1-{limit} bytes")
    if leaf and button.get("type") == "click" and not button.get("key"):
        problems.append(f"{name!r}: a click button needs a key")
    if leaf and button.get("type") not in ("click", "view", "scancode_push", "location_select"):
        problems.append(f"{name!r}: unsupported or missing type {button.get('type')!r}")
    return problems


# ---- temporary media (media/get): photos and voice kept (issue 10, item 5) ----------------
MEDIA_GONE = 40007   # invalid media_id: never existed, or WeChat deleted it (after 3 days)
JSON_TYPES = ("application/json", "text/json", "text/plain")


@dataclass(frozen=True)
class Media:
    """What media/get handed back: the call's Result, and the file with its Content-Type."""

    result: Result
    content: bytes = b""
    content_type: str = ""
    too_large: bool = False


def download_media(client, media_id: str, limit: int) -> Media:
    """Fetch a message's photo or voice (cgi-bin/media/get, GET) of at most `limit` bytes with
    the shared token (replaced once when rejected); never raises for API errors."""
    if getattr(client, "sandbox", False):
        return Media(Result(Outcome.REFUSED, None, "sandbox: no account to download from",
                            sandbox=True))
    try:
        token = client.tokens.get()
        try:
            return _media_get(client.http, media_id, token, limit)
        except ApiError as err:
            if err.result.code not in TOKEN_ERRORS:
                raise
            logger.info("media/get: token rejected (%s), replacing it once", err.result.code)
        return _media_get(client.http, media_id, client.tokens.refresh(stale=token), limit)
    except ApiError as err:
        return Media(err.result)


def _media_get(http: Http, media_id: str, token: str, limit: int) -> Media:
    """One GET of media/get: the bytes (read up to `limit` + 1), or WeChat's JSON error."""
    url = http.base + "cgi-bin/media/get?" + urlencode({"access_token": token,
                                                       "media_id": media_id})
    try:
        resp = http.pool.request("GET", url, timeout=http.timeout, retries=False,
                                 preload_content=False)
    except urllib3.exceptions.TimeoutError:
        raise _fail(Outcome.RETRY_LATER, f"no answer within {http.limit:g}s") from None
    except urllib3.exceptions.HTTPError as exc:
        raise _fail(Outcome.RETRY_LATER, f"connection failed: {type(exc).__name__}") from None
    try:
        kind = (resp.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        data = resp.read(limit + 1) if resp.status < 400 else b""
    except urllib3.exceptions.HTTPError as exc:   # a read timeout or a cut connection
        raise _fail(Outcome.RETRY_LATER, f"download cut: {type(exc).__name__}") from None
    finally:
        if not resp.isclosed():
            resp.close()   # not read to the end (too large): the connection cannot be reused
        resp.release_conn()
    if resp.status >= 400 or kind in JSON_TYPES or data[:1] == b"{":
        answer = http._json(resp.status, data)
        code = errcode_of(answer)
        if code == 0:   # e.g. a video's download link: not a photo or a recording
            raise _fail(Outcome.REFUSED, "media/get answered JSON, not a file")
        raise _fail(outcome_of(code), f"{code} {answer.get('errmsg', '')}".strip(), code)
    if len(data) > limit:
        return Media(Result(Outcome.REFUSED, None, f"over {limit} bytes"), b"", kind,
                     too_large=True)
    return Media(Result(Outcome.SENT, 0, "ok"), data, kind)
