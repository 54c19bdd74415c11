"""Read-side helpers: what templates see of tickets, events and chat reachability."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from bot.channel import cs_window
from bot.media import NOT_THE_SENDERS
from models import Follower, Staff
from models.issues import MEDIA_PENDING, MEDIA_SAVED, Ticket

CONSOLE_LIST = "/console/tickets"   # the console's open list (handlers/issues/web.py)


@dataclass
class TicketView:
    """A ticket as templates show it (local times, names resolved)."""

    number: int
    category: str
    urgent: bool
    state: str
    assignee: str | None
    cadre_name: str
    cadre_phone: str
    community: str | None
    address: str | None
    description: str
    on_behalf: bool
    created: datetime
    waited_minutes: int
    photos: int = 0
    voice: bool = False
    location: str | None = None
    resolution: str | None = None
    rating: int | None = None
    mine: bool = False


@dataclass
class EventView:
    """One history line."""

    at: datetime
    kind: str
    who: str
    text: str | None
    data: dict = field(default_factory=dict)


def _minutes(a: datetime, b: datetime) -> int:
    return max(int((b - a).total_seconds() // 60), 0)


def ticket_view(policy, ticket: Ticket, now: datetime, viewer_staff_id: int | None = None):
    """Build the TicketView of one ticket."""
    cadre = ticket.cadre
    photos = [a for a in ticket.attachments if a.kind == "image"]
    place = next((a for a in reversed(ticket.attachments) if a.kind == "location"), None)
    return TicketView(
        number=ticket.id, category=policy.category_name(ticket.category), urgent=ticket.urgent,
        state=ticket.state, assignee=ticket.assignee.name if ticket.assignee else None,
        cadre_name=cadre.name, cadre_phone=cadre.phone, community=cadre.community,
        address=cadre.address, description=ticket.description, on_behalf=ticket.on_behalf,
        created=ticket.created_at.astimezone(policy.zone),
        waited_minutes=_minutes(ticket.created_at, now), photos=len(photos),
        voice=any(a.kind == "voice" for a in ticket.attachments),
        location=(place.label or f"{place.latitude},{place.longitude}") if place else None,
        resolution=ticket.resolution, rating=ticket.rating,
        mine=viewer_staff_id is not None and ticket.assignee_id == viewer_staff_id)


@dataclass
class AttachmentView:
    """One attachment as templates show it, with what became of its kept copy (bot/media.py)."""

    id: int
    kind: str              # image | voice | location
    status: str | None     # pending | saved | failed | expired (None for a location)
    error: str | None      # why not saved (or, when saved, `not_converted`: AMR only)
    attempts: int
    url: str | None        # a photo's address on WeChat's servers
    place: str | None      # a location's label or coordinates

    @property
    def playable(self) -> bool:
        """Saved in a form browsers show: any saved photo, a recording converted to MP3."""
        return self.status == "saved" and self.error != "not_converted"


@dataclass
class MediaGroup:
    """Photos and recordings in one state, for a sentence like 照片2张、语音1段已保存."""

    status: str
    photos: int = 0
    voices: int = 0
    errors: list = field(default_factory=list)   # the distinct reasons, in order


MEDIA_ORDER = ("saved", "pending", "failed", "expired")


def attachment_views(attachments) -> list[AttachmentView]:
    """Attachments (a ticket's, or the recordings of a 人工 request) as templates show them."""
    return [AttachmentView(
        id=a.id, kind=a.kind, status=a.status, error=a.error, attempts=a.attempts or 0,
        url=a.url if a.url and a.url.startswith(("http://", "https://")) else None,
        place=(a.label or f"{a.latitude},{a.longitude}") if a.kind == "location" else None)
        for a in attachments]


def media_groups(ticket: Ticket) -> list[MediaGroup]:
    """The ticket's photos and recordings counted by the state of their kept copy."""
    groups = {status: MediaGroup(status) for status in MEDIA_ORDER}
    for a in ticket.attachments:
        group = groups.get(a.status or "")
        if a.kind not in ("image", "voice") or group is None:
            continue
        if a.kind == "image":
            group.photos += 1
        else:
            group.voices += 1
        if a.error and a.error not in group.errors and a.status != "saved":
            group.errors.append(a.error)
    return [g for g in groups.values() if g.photos or g.voices]


def voice_waiting(attachments, since: datetime | None = None) -> str | None:
    """What `待办` says of the voice recordings (those after `since`) a person must hear:
    `kept` (saved, or being saved: in the console), `asked` (none could be kept, and the
    sender was asked to say it again), `lost` (none kept, nobody asked), None without any."""
    voices = [a for a in attachments
              if a.kind == "voice" and (since is None or a.created_at > since)]
    if not voices:
        return None
    if any(a.status in (MEDIA_SAVED, MEDIA_PENDING) for a in voices):
        return "kept"
    return "asked" if any(a.error not in NOT_THE_SENDERS for a in voices) else "lost"


def console_link(settings) -> str | None:
    """The console's open list as staff reach it (YINLING_PUBLIC_URL), None when unset."""
    base = (settings.public_url or "").rstrip("/")
    return base + CONSOLE_LIST if base else None


def event_views(session, policy, ticket: Ticket) -> list[EventView]:
    """The ticket's history, oldest first, with who did what (and for whom)."""
    staff_ids = {e.actor_staff_id for e in ticket.events if e.actor_staff_id}
    names = dict(session.execute(select(Staff.id, Staff.name).where(Staff.id.in_(staff_ids))
                                 ).all()) if staff_ids else {}
    views = []
    for e in ticket.events:
        if e.actor_role == "staff":
            who = names.get(e.actor_staff_id, "?")
        elif e.actor_role in ("cadre", "family"):
            who = e.actor_role
        else:
            who = "system"
        views.append(EventView(at=e.at.astimezone(policy.zone), kind=e.kind, who=who,
                               text=e.text, data=e.data or {}))
    return views


@dataclass
class Reach:
    """Whether a user can get a chat (customer-service) message now, until when, how many."""

    subscribed: bool
    open: bool
    until: datetime | None
    remaining_minutes: int
    messages_left: int


def chat_reach(session, settings, openid: str, now: datetime) -> Reach:
    """The reporter's customer-service window, by the delivery rules (bot.channel)."""
    follower = session.scalar(select(Follower).where(Follower.openid == openid))
    if follower is None:
        return Reach(False, False, None, 0, 0)
    is_open, until, left = cs_window(follower, now, settings)
    minutes = _minutes(now, until) if is_open and until else 0
    until = until.astimezone(settings.zone) if until else None
    return Reach(bool(follower.subscribed), bool(is_open), until, minutes, left)
