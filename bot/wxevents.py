"""WeChat's subscription-notice events, taught to wechatpy's parser (1.8 does not know them).

They are registered in wechatpy's own event table (`register_event`), so `parse_message` gives
a typed event wherever it runs (the webhook, the spool's replay). Each event carries a
container element with one or more `<List>` items:

  subscribe_msg_popup_event   SubscribeMsgPopupEvent: TemplateId, SubscribeStatusString
                              (accept | reject), PopupScene (1: a web page, 2: an article)
  subscribe_msg_change_event  SubscribeMsgChangeEvent: TemplateId, SubscribeStatusString
                              (reject: the user turned the notice off in WeChat's settings)
  subscribe_msg_sent_event    SubscribeMsgSentEvent: TemplateId, MsgID, ErrorCode,
                              ErrorStatus (the final word on one bizsend)

WeChat's own documentation shows the change event inside a `SubscribeMsgPopupEvent`
container, so the items are read from whichever of the three containers is present.
"""
from __future__ import annotations

import hashlib
import json

from wechatpy.events import BaseEvent, register_event

POPUP, CHANGE, SENT = ("subscribe_msg_popup_event", "subscribe_msg_change_event",
                       "subscribe_msg_sent_event")
CONTAINERS = ("SubscribeMsgPopupEvent", "SubscribeMsgChangeEvent", "SubscribeMsgSentEvent")
ITEM_KEYS = ("TemplateId", "SubscribeStatusString", "PopupScene", "MsgID", "ErrorCode",
             "ErrorStatus")
TEXT_LIMIT = 128   # longer than any template id or status WeChat sends


def items_of(data: dict) -> list[dict]:
    """The `<List>` items of a subscription-notice event, as dicts of short strings."""
    container = next((data[k] for k in CONTAINERS if isinstance(data.get(k), dict)), {})
    found = container.get("List")
    found = [found] if isinstance(found, dict) else found if isinstance(found, list) else []
    return [{key: _text(item.get(key)) for key in ITEM_KEYS}
            for item in found if isinstance(item, dict)]


def _text(value) -> str:
    return value.strip()[:TEXT_LIMIT] if isinstance(value, str) else ""


def content_key(data: dict) -> str:
    """A short digest of an event's items: two events of one second differ, a retry does not."""
    canonical = json.dumps(items_of(data), sort_keys=True, ensure_ascii=False)
    return hashlib.sha1(canonical.encode("utf-8")).hexdigest()[:16]


class SubscribeMsgEvent(BaseEvent):
    """A subscription-notice event: its `items`, one dict per `<List>` element."""

    @property
    def items(self) -> list[dict]:
        """The `<List>` items (TemplateId, SubscribeStatusString, PopupScene, MsgID, …)."""
        return items_of(self._data)


@register_event(POPUP)
class SubscribeMsgPopupEvent(SubscribeMsgEvent):
    """The user answered a subscription pop-up (on a page, or in an article)."""

    event = POPUP


@register_event(CHANGE)
class SubscribeMsgChangeEvent(SubscribeMsgEvent):
    """The user turned a subscription notice off in WeChat's notice settings."""

    event = CHANGE


@register_event(SENT)
class SubscribeMsgSentEvent(SubscribeMsgEvent):
    """WeChat's final word on subscription notices we sent (bizsend)."""

    event = SENT
