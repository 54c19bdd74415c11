"""Subscription notices users accepted (PRODUCT.md 7.4): recorded from WeChat's pop-up and
change events, taken by the delivery chooser before a bizsend and given back when the send did
not happen.

A long-term acceptance (`term: long` in config/templates.yaml) allows every notice of its
template until the user turns it off; a one-time acceptance allows one notice, and each
accepted pop-up adds one. Taking a one-time acceptance is one conditional UPDATE, so two
workers never spend the same one; a send that fails for a reason other than the user's (busy,
a refused value) gives it back. WeChat's 43101 ("user refused") ends the acceptance.
"""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError

from models.subscriptions import ACCEPT, REJECT, Subscription

logger = logging.getLogger(__name__)

LONG, ONCE = "long", "once"
TERMS = (LONG, ONCE)
STATUSES = (ACCEPT, REJECT)
USER_REFUSED = 43101   # bizsend: no acceptance (left), or the user turned the notice off


# ---- WeChat's events ---------------------------------------------------------------------
def record_answer(session, openid: str, template_id: str, status: str, source: str,
                  now: datetime) -> Subscription | None:
    """One `<List>` item of a pop-up or change event: accept adds an acceptance, reject ends
    them. Unknown statuses are logged and ignored (None)."""
    if status not in STATUSES or not template_id:
        logger.warning("subscription event from %s: item %r / %r ignored", openid,
                       template_id, status)
        return None
    row = session.scalar(select(Subscription).where(Subscription.openid == openid,
                                                    Subscription.template_id == template_id))
    if row is None:
        row = _insert(session, openid, template_id, now)
    _apply(row, status, source, now)
    session.flush()
    return row


def _insert(session, openid: str, template_id: str, now: datetime) -> Subscription:
    """A new row with nothing accepted yet (or the one a concurrent event just made)."""
    try:
        with session.begin_nested():
            row = Subscription(openid=openid, template_id=template_id, status=REJECT,
                               remaining=0, updated_at=now)
            session.add(row)
        return row
    except IntegrityError:
        return session.scalar(select(Subscription).where(
            Subscription.openid == openid, Subscription.template_id == template_id))


def _apply(row: Subscription, status: str, source: str, now: datetime) -> None:
    row.status, row.source, row.updated_at = status, source[:16], now
    if status == ACCEPT:
        # An expression, not a read-modify-write: a worker may be taking one at this moment.
        row.remaining = Subscription.remaining + 1
        row.accepted_at = now
    else:
        row.remaining = 0


def acceptances(session, openid: str | None, template_ids) -> dict[str, Subscription]:
    """This user's rows for these templates, by template id (none for an unknown viewer)."""
    if not openid or not template_ids:
        return {}
    rows = session.scalars(select(Subscription).where(
        Subscription.openid == openid, Subscription.template_id.in_(list(template_ids))))
    return {row.template_id: row for row in rows}


def allows(row: Subscription | None, term: str) -> bool:
    """Whether a recorded answer lets a notice of a template with this term through now."""
    if row is None or row.status != ACCEPT:
        return False
    return term == LONG or (row.remaining or 0) > 0


# ---- the delivery side (one connection, each statement atomic) ----------------------------
_WHO = (Subscription.openid == bindparam("b_openid"),
        Subscription.template_id == bindparam("b_template"))
_ACCEPTED = select(Subscription.id).where(*_WHO, Subscription.status == ACCEPT)
_TAKE_ONE = (update(Subscription)
             .where(*_WHO, Subscription.status == ACCEPT, Subscription.remaining > 0)
             .values(remaining=Subscription.remaining - 1))
_GIVE_BACK = (update(Subscription).where(*_WHO, Subscription.status == ACCEPT)
              .values(remaining=Subscription.remaining + 1))
_REFUSED = (update(Subscription).where(*_WHO)
            .values(status=REJECT, remaining=0, source="bizsend",
                    updated_at=bindparam("b_now")))


def take(conn, openid: str, template_id: str, term: str) -> bool:
    """Whether a notice may go now; a one-time acceptance is used up by the taking."""
    params = {"b_openid": openid, "b_template": template_id}
    if term == LONG:
        return conn.execute(_ACCEPTED, params).first() is not None
    return conn.execute(_TAKE_ONE, params).rowcount == 1


def give_back(conn, openid: str, template_id: str, term: str) -> None:
    """The notice was not sent after all (busy, a value refused): its acceptance stays."""
    if term == ONCE:
        conn.execute(_GIVE_BACK, {"b_openid": openid, "b_template": template_id})


def refused(conn, openid: str, template_id: str, now: datetime) -> None:
    """WeChat said 43101: nothing (left) to send on; the user must accept again."""
    conn.execute(_REFUSED, {"b_openid": openid, "b_template": template_id, "b_now": now})
