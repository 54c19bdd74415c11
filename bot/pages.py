"""Pages a push links to (PRODUCT.md 7.6): signed expiring links, WeChat's silent web login
(snsapi_base) that tells who opened a page, and the CSRF token of the page's forms.

The routes and what each kind of page offers live in handlers/pages/; this module is what the
delivery side (the template's `url`) and those routes share.
"""
from __future__ import annotations

import hmac
import logging
import secrets
from urllib.parse import urlencode

from flask import session
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from wechatpy.exceptions import WeChatOAuthException
from wechatpy.oauth import WeChatOAuth

logger = logging.getLogger(__name__)

PAGE_SALT = "yinling.page.delivery"   # one salt per purpose: a page link signs a delivery id
PAGE_PATH = "/m/"
DAY_SECONDS = 86400
# Session keys (prefixed: the cookie is shared with the staff console).
VIEWER_KEY, STATE_KEY, CSRF_KEY = "page_openid", "page_state", "page_csrf"


class BadLink(Exception):
    """A page link that was altered, is malformed, or has expired (`expired`)."""

    def __init__(self, expired: bool):
        super().__init__("expired" if expired else "invalid")
        self.expired = expired


# ---- signed links ------------------------------------------------------------------------------
def _signer(settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt=PAGE_SALT)


def page_token(settings, delivery_id: int) -> str:
    """The signed, timestamped token naming one delivery's page."""
    return _signer(settings).dumps(int(delivery_id))


def page_url(settings, delivery_id: int) -> str | None:
    """YINLING_PUBLIC_URL/m/<token> for a delivery; None when no public address is set."""
    if not settings.public_url:
        return None
    return settings.public_url.rstrip("/") + PAGE_PATH + page_token(settings, delivery_id)


def delivery_of(settings, token: str) -> int:
    """The delivery id a token names, or BadLink (altered, malformed, older than page_days)."""
    try:
        value = _signer(settings).loads(token, max_age=settings.page_days * DAY_SECONDS)
    except SignatureExpired:
        raise BadLink(expired=True) from None
    except BadSignature:
        raise BadLink(expired=False) from None
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadLink(expired=False)
    return value


# ---- who opens the page (snsapi_base) ---------------------------------------------------------
class PageOAuth(WeChatOAuth):
    """wechatpy's web login under the configured roots, with a timeout on every call."""

    def __init__(self, settings, redirect_uri: str, state: str = ""):
        super().__init__(settings.wechat_appid, settings.wechat_secret, redirect_uri,
                         scope="snsapi_base", state=state)
        self.API_BASE_URL = settings.wechat_api_base.rstrip("/") + "/"
        self.OAUTH_BASE_URL = settings.wechat_oauth_base.rstrip("/") + "/connect/"
        self.timeout = settings.wechat_timeout_seconds

    def _request(self, method, url_or_endpoint, **kwargs):
        kwargs.setdefault("timeout", self.timeout)
        return super()._request(method, url_or_endpoint, **kwargs)


def viewer() -> str | None:
    """The openid WeChat's web login gave this browser session, if any."""
    openid = session.get(VIEWER_KEY)
    return openid if isinstance(openid, str) and openid else None


def login_url(settings, back_to: str) -> str:
    """WeChat's authorize address that comes back to `back_to` with a code (and our state)."""
    state = session[STATE_KEY] = secrets.token_urlsafe(12)
    return PageOAuth(settings, back_to, state).authorize_url


def finish_login(settings, redirect_uri: str, code: str, state: str) -> str | None:
    """The viewer's openid for a code, kept in the session; None on a bad state or code."""
    expected = session.pop(STATE_KEY, None)
    if not isinstance(expected, str) or not hmac.compare_digest(expected, state or ""):
        logger.warning("page login: state does not match this session")
        return None
    try:
        answer = PageOAuth(settings, redirect_uri).fetch_access_token(code)
    except (WeChatOAuthException, OSError, ValueError, KeyError) as exc:
        logger.warning("page login: code exchange failed: %s", exc)
        return None
    session[VIEWER_KEY] = answer["openid"]
    return answer["openid"]


def without_login(url: str, args: dict) -> str:
    """The page address without the code and state the login appended."""
    rest = {k: v for k, v in args.items() if k not in ("code", "state")}
    return url + (f"?{urlencode(rest)}" if rest else "")


# ---- CSRF --------------------------------------------------------------------------------------
def csrf_token() -> str:
    """This session's token for the page forms (created on first use)."""
    token = session.get(CSRF_KEY)
    if not isinstance(token, str) or len(token) < 32:
        token = session[CSRF_KEY] = secrets.token_urlsafe(32)
    return token


def csrf_ok(sent: str | None) -> bool:
    """Whether a form carries this session's token (constant-time compare)."""
    expected = session.get(CSRF_KEY)
    return isinstance(expected, str) and bool(sent) and \
        hmac.compare_digest(sent.encode(), expected.encode())
