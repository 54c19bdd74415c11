"""Typed settings from the environment and an optional `.env` file (PRODUCT.md §3)."""
from __future__ import annotations

import dataclasses
import os
from functools import lru_cache
import re
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

ROOT = Path(__file__).resolve().parent.parent
DEV_TOKEN = "yinling-dev-token"
DEV_SECRET_KEY = "yinling-dev-secret-key-not-for-production"


class SettingsError(ValueError):
    """A configuration value is missing or malformed; the message says which and why."""


@dataclass(frozen=True)
class Settings:
    """Every knob of the service, validated once at start."""

    wechat_token: str = DEV_TOKEN
    wechat_appid: str = ""
    wechat_secret: str = ""
    wechat_aes_key: str = ""
    wechat_aes_key_previous: str = ""
    wechat_api_base: str = "https://api.weixin.qq.com/"
    wechat_template_notice: str = ""
    # WeChat's web login (snsapi_base) for the pages a push links to: under this root.
    wechat_oauth_base: str = "https://open.weixin.qq.com/"
    # Template ids named in config/templates.yaml: WECHAT_TEMPLATE_<NAME> (template messages)
    # and WECHAT_SUBSCRIBE_<NAME> (subscription notices) -> id, from the environment.
    wechat_templates: dict = field(default_factory=dict)
    database_url: str = f"sqlite:///{ROOT / 'var' / 'yinling.db'}"
    redis_url: str = ""
    tz: str = "Asia/Shanghai"
    quiet_hours: str = "21:00-08:00"
    env: str = "development"
    allow_dev_defaults: bool = False
    # Plaintext POSTs carry no signature over the body; with an AES key they are refused,
    # and production wants an AES key, unless this says otherwise.
    allow_plaintext: bool = False
    reply_budget_seconds: float = 4.0
    timestamp_window_seconds: int = 300
    max_body_bytes: int = 256 * 1024
    dialog_timeout_seconds: int = 600
    delivery_concurrency: int = 16
    # Customer-service window (PRODUCT.md 7.4): 5 messages per user message within 48 h,
    # 3 within a minute after a menu click, follow or scan.
    cs_window_hours: float = 48.0
    cs_quota_message: int = 5
    cs_event_window_seconds: float = 60.0
    cs_quota_event: int = 3
    # The WeChat API client and the delivery workers.
    wechat_timeout_seconds: float = 10.0
    delivery_max_attempts: int = 6
    delivery_backoff_seconds: float = 5.0
    delivery_backoff_max_seconds: float = 600.0
    delivery_lease_seconds: float = 120.0
    delivery_sweep_seconds: float = 5.0
    delivery_batch_size: int = 100
    # Messages per second for the whole account, shared by every worker (0: no limit), and the
    # local hour WeChat's daily API quota (45009) comes back.
    send_rate: float = 50.0
    quota_reset_hour: int = 0
    # The scheduler's leader lock: held for this long, renewed every third of it.
    scheduler_lock_seconds: float = 30.0
    # The local durable spool for messages the database cannot take (one per host).
    spool_dir: str = str(ROOT / "var" / "spool")
    spool_max_files: int = 20000
    spool_max_bytes: int = 256 * 1024 * 1024
    record_limit_seconds: float = 2.0   # recording slower than this goes to the spool
    # Photos and voice of tickets, downloaded from WeChat (which deletes them after 3 days).
    media_dir: str = str(ROOT / "var" / "media")
    # Reverse proxies in front of the app whose X-Forwarded-For is believed (0: none).
    trusted_proxies: int = 0
    # The bureau's 24-hour duty phone, given with the 120/119 advice in an emergency.
    duty_phone: str = ""
    # Where phones reach this server (pages a push links to, PRODUCT.md 7.6); unset: pushes
    # carry no link. Such a link works this many days.
    public_url: str = ""
    page_days: int = 30
    # Signs the staff console's session cookie.
    secret_key: str = DEV_SECRET_KEY
    extra: dict = field(default_factory=dict)

    @property
    def sandbox(self) -> bool:
        """True when no API credentials are configured: deliveries are recorded, not sent."""
        return not (self.wechat_appid and self.wechat_secret)

    @property
    def zone(self) -> ZoneInfo:
        """The local time zone every schedule uses."""
        return ZoneInfo(self.tz)

    @property
    def quiet_window(self) -> tuple[time, time]:
        """Start and end of the quiet-hours window (equal times: no quiet hours)."""
        if self.quiet_hours.strip().lower() in QUIET_OFF:
            return time(0), time(0)
        return parse_window(self.quiet_hours)


QUIET_OFF = {"", "off", "none"}

ENV_MAP = {
    "WECHAT_TOKEN": "wechat_token",
    "WECHAT_APPID": "wechat_appid",
    "WECHAT_SECRET": "wechat_secret",
    "WECHAT_AES_KEY": "wechat_aes_key",
    "WECHAT_AES_KEY_PREVIOUS": "wechat_aes_key_previous",
    "WECHAT_API_BASE": "wechat_api_base",
    "WECHAT_TEMPLATE_NOTICE": "wechat_template_notice",
    "WECHAT_OAUTH_BASE": "wechat_oauth_base",
    "YINLING_PUBLIC_URL": "public_url",
    "YINLING_PAGE_DAYS": "page_days",
    "DATABASE_URL": "database_url",
    "REDIS_URL": "redis_url",
    "YINLING_TZ": "tz",
    "QUIET_HOURS": "quiet_hours",
    "YINLING_ENV": "env",
    "YINLING_ALLOW_DEV_DEFAULTS": "allow_dev_defaults",
    "YINLING_ALLOW_PLAINTEXT": "allow_plaintext",
    "YINLING_REPLY_BUDGET": "reply_budget_seconds",
    "YINLING_DELIVERY_CONCURRENCY": "delivery_concurrency",
    "YINLING_CS_QUOTA_MESSAGE": "cs_quota_message",
    "YINLING_CS_QUOTA_EVENT": "cs_quota_event",
    "WECHAT_TIMEOUT": "wechat_timeout_seconds",
    "YINLING_DELIVERY_MAX_ATTEMPTS": "delivery_max_attempts",
    "YINLING_DELIVERY_BACKOFF": "delivery_backoff_seconds",
    "YINLING_DELIVERY_LEASE": "delivery_lease_seconds",
    "YINLING_DELIVERY_BATCH": "delivery_batch_size",
    "YINLING_DELIVERY_SWEEP": "delivery_sweep_seconds",
    "YINLING_SCHEDULER_LOCK": "scheduler_lock_seconds",
    "YINLING_SECRET_KEY": "secret_key",
    "YINLING_DUTY_PHONE": "duty_phone",
    "YINLING_TRUSTED_PROXIES": "trusted_proxies",
    "YINLING_SPOOL_DIR": "spool_dir",
    "YINLING_SPOOL_MAX_FILES": "spool_max_files",
    "YINLING_SPOOL_MAX_BYTES": "spool_max_bytes",
    "YINLING_RECORD_LIMIT": "record_limit_seconds",
    "YINLING_MEDIA_DIR": "media_dir",
    "YINLING_SEND_RATE": "send_rate",
    "YINLING_QUOTA_RESET_HOUR": "quota_reset_hour",
}

POSITIVE = ("cs_window_hours", "cs_event_window_seconds", "wechat_timeout_seconds",
            "delivery_concurrency", "delivery_max_attempts", "delivery_backoff_seconds",
            "delivery_backoff_max_seconds", "delivery_lease_seconds", "delivery_sweep_seconds",
            "delivery_batch_size", "scheduler_lock_seconds", "spool_max_files",
            "spool_max_bytes", "record_limit_seconds", "page_days")


@lru_cache(maxsize=16)
def parse_window(text: str) -> tuple[time, time]:
    """Parse `HH:MM-HH:MM` into two times."""
    m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", text or "")
    if not m:
        raise SettingsError(f"QUIET_HOURS must look like 21:00-08:00, got {text!r}")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    try:
        return time(h1, m1), time(h2, m2)
    except ValueError as exc:
        raise SettingsError(f"QUIET_HOURS has an impossible time: {text!r}") from exc


def _coerce(name: str, raw, type_name: str):
    """Convert one environment string to the field's type, or say what is wrong."""
    if type_name == "bool":
        return str(raw).strip().lower() in {"1", "true", "yes", "on"}
    converters = {"int": (int, "a whole number"), "float": (float, "a number")}
    if type_name in converters:
        convert, what = converters[type_name]
        try:
            return convert(raw)
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"{name} must be {what}, got {raw!r}") from exc
    return str(raw).strip()


def load_settings(overrides: dict | None = None, environ: dict | None = None) -> Settings:
    """Build Settings from `.env`, the environment, then explicit overrides; validate them."""
    source: dict = {}
    env_file = ROOT / ".env"
    if env_file.exists():
        source.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    source.update(os.environ if environ is None else environ)
    types = {f.name: f.type for f in dataclasses.fields(Settings)}
    values: dict = {}
    for env_name, attr in ENV_MAP.items():
        if env_name in source and source[env_name] != "":
            values[attr] = _coerce(env_name, source[env_name], types[attr])
    values["wechat_templates"] = template_ids(source)
    for key, value in (overrides or {}).items():
        if key not in types:
            raise SettingsError(f"unknown setting {key!r}")
        values[key] = value
    settings = Settings(**values)
    validate(settings)
    return settings


TEMPLATE_SETTING = re.compile(r"WECHAT_(?:TEMPLATE|SUBSCRIBE)_[A-Z0-9_]+")


def template_ids(source: dict) -> dict:
    """Every WECHAT_TEMPLATE_<NAME> and WECHAT_SUBSCRIBE_<NAME> set in the environment
    (templates.yaml may name them)."""
    return {name: str(value).strip() for name, value in source.items()
            if TEMPLATE_SETTING.fullmatch(name) and name not in ENV_MAP and str(value).strip()}


def validate(s: Settings) -> None:
    """Raise SettingsError with a clear message for the first bad value."""
    for name, key in (("WECHAT_AES_KEY", s.wechat_aes_key),
                      ("WECHAT_AES_KEY_PREVIOUS", s.wechat_aes_key_previous)):
        if key and not re.fullmatch(r"[A-Za-z0-9+/]{43}", key):
            raise SettingsError(f"{name} must be the 43-character EncodingAESKey from the "
                                f"WeChat console (letters and digits); got {len(key)} characters")
    if s.wechat_aes_key_previous and not s.wechat_aes_key:
        raise SettingsError("WECHAT_AES_KEY_PREVIOUS is set but WECHAT_AES_KEY is not")
    if s.wechat_aes_key and not s.wechat_appid:
        raise SettingsError("WECHAT_AES_KEY needs WECHAT_APPID (safe mode checks the AppId)")
    if bool(s.wechat_appid) != bool(s.wechat_secret) and not s.wechat_aes_key:
        raise SettingsError("set both WECHAT_APPID and WECHAT_SECRET, or neither (sandbox mode)")
    if not s.wechat_token or not re.fullmatch(r"[A-Za-z0-9]{3,32}|[\w-]{3,64}", s.wechat_token):
        raise SettingsError("WECHAT_TOKEN must be 3-32 letters or digits")
    for name, url in (("WECHAT_API_BASE", s.wechat_api_base),
                      ("WECHAT_OAUTH_BASE", s.wechat_oauth_base)):
        if not url.startswith(("http://", "https://")):
            raise SettingsError(f"{name} must be an http(s) URL, got {url!r}")
    if s.public_url and not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", s.public_url):
        raise SettingsError("YINLING_PUBLIC_URL must be the http(s) address phones reach this "
                            f"server at (no query), got {s.public_url!r}")
    try:
        ZoneInfo(s.tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SettingsError(f"YINLING_TZ is not a known time zone: {s.tz!r}") from exc
    if s.quiet_hours.strip().lower() not in QUIET_OFF:
        parse_window(s.quiet_hours)
    _check_numbers(s)
    if not s.media_dir.strip():
        raise SettingsError("YINLING_MEDIA_DIR must name the folder for tickets' photos and voice")
    if len(s.secret_key) < 16:
        raise SettingsError("YINLING_SECRET_KEY must be at least 16 characters")
    if s.env not in {"development", "production", "test"}:
        raise SettingsError(f"YINLING_ENV must be development, production or test, got {s.env!r}")
    if s.env == "production" and not s.allow_dev_defaults:
        _refuse_dev_defaults(s)


def _check_numbers(s: Settings) -> None:
    """Quotas may be 0 (never use the chat window); timings and sizes must be positive."""
    for name in POSITIVE:
        if getattr(s, name) <= 0:
            raise SettingsError(f"{name} must be greater than 0, got {getattr(s, name)!r}")
    for name in ("cs_quota_message", "cs_quota_event", "send_rate"):
        if getattr(s, name) < 0:
            raise SettingsError(f"{name} must be 0 or more, got {getattr(s, name)!r}")
    if not 0 <= s.quota_reset_hour <= 23:
        raise SettingsError(f"YINLING_QUOTA_RESET_HOUR must be 0-23, got {s.quota_reset_hour}")
    # One send can take a token refresh and a retry: three calls, each up to the timeout.
    if s.delivery_lease_seconds <= 3 * s.wechat_timeout_seconds:
        raise SettingsError("delivery_lease_seconds must be more than 3 x wechat_timeout_seconds "
                            "(a send still running must never look abandoned)")


PRODUCTION_SECRET_MIN = 32
PRODUCTION_TOKEN_MIN = 16


def _weak(value: str, length: int) -> bool:
    """Shorter than `length`, or made of few distinct characters (`aaaa…`, `abab…`)."""
    return len(value) < length or len(set(value)) < min(10, length // 2)


def _refuse_dev_defaults(s: Settings) -> None:
    problems = []
    if s.wechat_token == DEV_TOKEN:
        problems.append("WECHAT_TOKEN is the development token")
    elif _weak(s.wechat_token, PRODUCTION_TOKEN_MIN):
        problems.append(f"WECHAT_TOKEN is weak (use {PRODUCTION_TOKEN_MIN}-32 random letters "
                        "and digits)")
    if s.secret_key == DEV_SECRET_KEY:
        problems.append("YINLING_SECRET_KEY is the development key")
    elif _weak(s.secret_key, PRODUCTION_SECRET_MIN):
        problems.append(f"YINLING_SECRET_KEY is weak (use at least {PRODUCTION_SECRET_MIN} "
                        "random characters, e.g. python -c 'import secrets; "
                        "print(secrets.token_urlsafe(32))')")
    if s.sandbox:
        problems.append("WECHAT_APPID/WECHAT_SECRET are unset (sandbox mode)")
    if s.database_url.startswith("sqlite"):
        problems.append("DATABASE_URL is SQLite")
    if not s.duty_phone:
        problems.append("YINLING_DUTY_PHONE is unset (emergencies are told the 24-hour phone)")
    if not s.public_url.startswith("https://"):
        problems.append("YINLING_PUBLIC_URL is unset or not https (template and subscription "
                        "notices link to their page there; WeChat's web login needs the "
                        "account's https domain)")
    if not s.redis_url:
        problems.append("REDIS_URL is unset (each worker's in-process stand-in breaks locks, "
                        "the console's throttle and logout across processes)")
    if not s.wechat_aes_key and not s.allow_plaintext:
        problems.append("WECHAT_AES_KEY is unset (plaintext mode signs no message body; set "
                        "YINLING_ALLOW_PLAINTEXT=1 to accept that)")
    if problems:
        raise SettingsError("YINLING_ENV=production refuses development defaults: "
                            + "; ".join(problems)
                            + ". Fix them, or set YINLING_ALLOW_DEV_DEFAULTS=1 to accept them.")
