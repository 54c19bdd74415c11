"""Console passwords (werkzeug hashes), login checks and the failed-login throttle."""
from __future__ import annotations

import hashlib
import hmac
import logging
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from bot.kv import RedisDown
from bot.roles import SUPERVISOR
from bot.text import mask_name
from models.people import Staff

logger = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 256
HASH_METHOD = "scrypt"
# Throttle defaults; settings.extra["console_login_*"] overrides them (tests use short windows).
MAX_FAILURES_PER_NAME = 5        # from one client: that client waits, the staff member does not
MAX_FAILURES_PER_CLIENT = 20     # one client trying many names
MAX_FAILURES_PER_NAME_ANYWHERE = 50  # many clients guessing one name (a botnet): then it waits
FAILURE_WINDOW_SECONDS = 15 * 60
REDIS_DOWN_WAIT = 60  # no throttle to consult: refuse logins rather than allow unlimited tries


class PasswordError(ValueError):
    """A password cannot be set as asked; the message says why (shown by the CLI)."""


@dataclass(frozen=True)
class StaffUser:
    """The logged-in staff member as the console sees them (no ORM object kept)."""

    id: int
    name: str
    role: str

    @property
    def is_supervisor(self) -> bool:
        """Supervisors see and may do more (e.g. act on others' tickets, the staff page)."""
        return self.role == SUPERVISOR


def normalise_name(name: str | None) -> str:
    """The name as typed, with full-width forms and surrounding spaces undone."""
    return unicodedata.normalize("NFKC", name or "").strip()


# ---- passwords ---------------------------------------------------------------------------
def set_password(session, name: str, password: str) -> Staff:
    """Hash and store the console password of the one active staff member called `name`."""
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise PasswordError(f"the password must be {MIN_PASSWORD_LENGTH} to "
                            f"{MAX_PASSWORD_LENGTH} characters long")
    if password != password.strip():
        raise PasswordError("the password must not start or end with a space")
    found = list(session.scalars(select(Staff).where(Staff.name == normalise_name(name),
                                                     Staff.active.is_(True))))
    if not found:
        raise PasswordError(f"no active staff member named {name}")
    if len(found) > 1:
        raise PasswordError(f"{len(found)} active staff members are named {name}; "
                            "rename one first (names are console logins)")
    staff = found[0]
    staff.password_hash = generate_password_hash(password, method=HASH_METHOD)
    logger.info("console password set for staff %s", staff.id)
    return staff


@lru_cache(maxsize=1)
def _decoy_hash() -> str:
    """A hash checked when the name is unknown, so timing does not tell names apart."""
    return generate_password_hash("decoy-password-never-valid", method=HASH_METHOD)


def verify_login(session, name: str, password: str) -> StaffUser | None:
    """The active staff member with this name and password, else None (same cost either way)."""
    candidates = list(session.scalars(select(Staff).where(
        Staff.name == normalise_name(name), Staff.active.is_(True),
        Staff.password_hash.is_not(None)).order_by(Staff.id)))
    if not candidates:
        check_password_hash(_decoy_hash(), password or "")
        return None
    for staff in candidates:
        if check_password_hash(staff.password_hash, password or ""):
            return StaffUser(staff.id, staff.name, staff.role)
    return None


def fingerprint(password_hash: str | None) -> str:
    """A short digest of the stored hash: a session dies when the password changes."""
    return hashlib.sha256((password_hash or "").encode()).hexdigest()[:16]


def current_user(session, staff_id, stamp) -> StaffUser | None:
    """The staff member a console session belongs to, if still active with that password."""
    staff = session.get(Staff, staff_id) if isinstance(staff_id, int) else None
    if staff is None or not staff.active or not staff.password_hash:
        return None
    if not isinstance(stamp, str) or not hmac.compare_digest(stamp,
                                                             fingerprint(staff.password_hash)):
        return None
    return StaffUser(staff.id, staff.name, staff.role)


# ---- the throttle ------------------------------------------------------------------------
class Throttle:
    """Counts failed logins per name from one client, per client, and per name from anywhere,
    in Redis, in a fixed window. Someone guessing a colleague's name from their own machine
    locks out only themselves; without Redis it refuses logins (it fails closed)."""

    def __init__(self, redis_client, extra: dict | None = None):
        extra = extra or {}
        self.redis = redis_client
        self.per_name = int(extra.get("console_login_max_failures", MAX_FAILURES_PER_NAME))
        self.per_client = int(extra.get("console_login_max_client_failures",
                                        MAX_FAILURES_PER_CLIENT))
        self.per_name_anywhere = int(extra.get("console_login_max_name_failures",
                                               MAX_FAILURES_PER_NAME_ANYWHERE))
        self.window = int(extra.get("console_login_window_seconds", FAILURE_WINDOW_SECONDS))

    @staticmethod
    def _key(kind: str, value: str) -> str:
        # Hashed: names and addresses never sit in Redis in the clear.
        return f"console:login-fail:{kind}:{hashlib.sha256(value.encode()).hexdigest()[:32]}"

    def _keys(self, name: str, client: str) -> list[tuple[str, int]]:
        who = normalise_name(name).lower()
        return [(self._key("name-client", f"{who}\x1f{client or '?'}"), self.per_name),
                (self._key("client", client or "?"), self.per_client),
                (self._key("name", who), self.per_name_anywhere)]

    def blocked_for(self, name: str, client: str) -> int:
        """Seconds until this name/client may try again (0 when not blocked)."""
        try:
            wait = 0
            for key, limit in self._keys(name, client):
                count = int(self.redis.get(key) or 0)
                if count >= limit:
                    wait = max(wait, self.redis.ttl(key), 1)
            return wait
        except RedisDown:
            logger.warning("console login refused: the throttle is unavailable (Redis down)")
            return REDIS_DOWN_WAIT

    def failed(self, name: str, client: str) -> int:
        """Count one failure; returns the failures of this name in the window."""
        counts = []
        try:
            for key, _limit in self._keys(name, client):
                self.redis.set(key, 0, ex=self.window, nx=True)  # the window starts now
                counts.append(int(self.redis.incr(key)))
        except RedisDown:
            logger.warning("console login throttle unavailable (Redis down); not counted")
            return 0
        logger.warning("console login refused for %s (%d failures in the window)",
                       mask_name(normalise_name(name)), counts[0])
        return counts[0]

    def succeeded(self, name: str, client: str) -> None:
        """A successful login clears the failures of that name from that client."""
        try:
            self.redis.delete(self._keys(name, client)[0][0])
        except RedisDown:
            pass
