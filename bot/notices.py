"""config/templates.yaml: for each kind of push, the channel used when the chat window is
closed, the template id, and which fact goes into which field (PRODUCT.md §3, §7.4).

The outbox stores each delivery's kind and named facts (`facts_of`); the deliverer builds the
template's `data` from them (`Notices.choose` + `template_data`), every value shaped to its
field's type (bot/fields.py). Kinds without an entry, and kinds whose own template is not
configured, use WECHAT_TEMPLATE_NOTICE with the generic what/when fields.

A kind whose channel is `subscribe` also names a subscription-notice template (`subscribe:`:
its id, `term` long or once, and its fields, by default the template's): the chooser sends it
(`message/subscribe/bizsend`) to users who accepted it, and the template message otherwise.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache

import yaml
from jinja2 import ChainableUndefined, Environment, TemplateError

from bot.config import ConfigFile
from bot.channel import SANDBOX_TEMPLATE
from bot.fields import CHANNELS, TYPES, one_line, shape, type_of_key
from bot.pushkinds import COMMON_FACTS, GENERIC, KINDS, kind_of
from bot.settings import ROOT, SettingsError

logger = logging.getLogger(__name__)
DEFAULT_PATH = ROOT / "config" / "templates.yaml"
SETTINGS_KEY = "templates_config"   # settings.extra[...] may point at another file (tests)
NOTICE_SETTING = "WECHAT_TEMPLATE_NOTICE"
SETTING_NAME = re.compile(r"WECHAT_(?:TEMPLATE|SUBSCRIBE)_[A-Z0-9_]+")
FACT_LIMIT = 200       # characters of a fact kept with the delivery
NOT_SHOWN = ("first", "remark")
ENTRY_KEYS = {"channel", "template_id", "fields", "subscribe"}
SUBSCRIBE_KEYS = {"template_id", "term", "fields"}
TERMS = ("long", "once")


class TemplateConfigError(ValueError):
    """config/templates.yaml is malformed; the message says where."""


@dataclass(frozen=True)
class Field:
    """One field of a template: its key in WeChat's `data`, the fact it shows, its type."""

    key: str
    fact: str
    type: str


@dataclass(frozen=True)
class Subscribe:
    """A kind's subscription-notice template: its id (or setting), term and fields."""

    template_id: str          # an id from the WeChat console, or a setting's name
    term: str                 # long | once, as chosen in the WeChat console
    fields: tuple[Field, ...]


@dataclass(frozen=True)
class Entry:
    """What templates.yaml says of one kind of push."""

    kind: str
    channel: str
    template_id: str          # an id from the WeChat console, or a setting's name
    fields: tuple[Field, ...]
    subscribe: Subscribe | None = None


GENERIC_ENTRY = Entry(GENERIC, "template", NOTICE_SETTING,
                      (Field("thing1", "what", "thing"), Field("time2", "when", "time")))


# ---- the facts a push carries ----------------------------------------------------------------
def _md(d) -> str:
    return f"{d.month}月{d.day}日" if isinstance(d, date) else ""


def _ymd(d) -> str:
    return f"{d.year}年{d.month}月{d.day}日" if isinstance(d, date) else ""


def _hm(t) -> str:
    return f"{t.hour:02d}:{t.minute:02d}" if isinstance(t, datetime) else ""


def _ymdhm(t) -> str:
    return f"{_ymd(t)} {_hm(t)}" if isinstance(t, datetime) else ""


def _months(items) -> str:
    """The months fee items cover: `2026年10月`, or `2026年9月~2026年10月`."""
    months = sorted({(i["year"], i["month"]) for i in items or ()})
    names = [f"{y}年{m}月" for y, m in months]
    return "" if not names else names[0] if len(names) == 1 else f"{names[0]}~{names[-1]}"


_env = Environment(undefined=ChainableUndefined, autoescape=False)
_env.filters.update(md=_md, ymd=_ymd, hm=_hm, ymdhm=_ymdhm, months=_months)


@lru_cache(maxsize=512)
def _compiled(expression: str):
    return _env.from_string(expression)


def _render(expression: str, context: dict, where: str) -> str:
    """One fact; '' (and a warning) when the push's values do not give it: never fails a push."""
    try:
        return one_line(_compiled(expression).render(context))[:FACT_LIMIT]
    except (TemplateError, AttributeError, KeyError, TypeError, ValueError) as exc:
        logger.warning("fact %s could not be read from the push: %s", where, exc)
        return ""


def facts_of(template: str, values: dict, body: str, now: datetime) -> tuple[str, dict]:
    """(kind, facts) of a push: its kind's facts from the push's values, plus what and when."""
    kind = kind_of(template)
    context = {**values, "now": now}
    expressions = kind.pushes.get(template)
    if expressions is None:   # a push no kind lists: its text is what it says
        facts = {"text": one_line(body)[:FACT_LIMIT]}
    else:
        facts = {name: _render(expr, context, f"{template}:{name}")
                 for name, expr in expressions.items()}
    facts["what"] = kind.what.format(**facts)[:FACT_LIMIT]
    facts["when"] = _ymdhm(now)
    return kind.name, facts


def template_data(fields, facts: dict, channel: str = "template") -> dict:
    """WeChat's `data`: each field's fact shaped to its type (never first/remark)."""
    return {f.key: {"value": shape(facts.get(f.fact), f.type, channel)} for f in fields}


def fallback_facts(body: str, now: datetime) -> dict:
    """Facts for a delivery stored without any (made before they were kept)."""
    return {"what": one_line(body)[:FACT_LIMIT], "when": _ymdhm(now)}


# ---- templates.yaml ------------------------------------------------------------------------
def template_id_of(entry: Entry | Subscribe, settings) -> str:
    """The entry's template id: literal, or read from the setting it names ('' when unset)."""
    if not SETTING_NAME.fullmatch(entry.template_id):
        return entry.template_id
    if entry.template_id == NOTICE_SETTING:
        return settings.wechat_template_notice or ""
    return (getattr(settings, "wechat_templates", None) or {}).get(entry.template_id, "")


@dataclass(frozen=True)
class Notices:
    """The parsed templates.yaml."""

    entries: dict

    @property
    def generic(self) -> Entry:
        """The generic notice: WECHAT_TEMPLATE_NOTICE with what/when unless the file says."""
        return self.entries.get(GENERIC, GENERIC_ENTRY)

    def choose(self, kind: str | None, settings) -> tuple[str, Entry] | None:
        """(template id, entry) for a closed chat window; None when no template is configured.

        A `subscribe` kind's template message is what its users who accepted no subscription
        notice get (see `subscription`).
        """
        entry = self.entries.get(kind or GENERIC)
        if entry is not None:
            own = template_id_of(entry, settings)
            if own:
                return own, entry
        generic = self.generic
        found = template_id_of(generic, settings) or (SANDBOX_TEMPLATE if settings.sandbox
                                                      else "")
        return (found, generic) if found else None

    def subscription(self, kind: str | None, settings) -> tuple[str, Subscribe] | None:
        """(template id, subscription) when this kind goes by subscription notice and its
        template id is set; None otherwise."""
        entry = self.entries.get(kind or GENERIC)
        if entry is None or entry.channel != "subscribe" or entry.subscribe is None:
            return None
        found = template_id_of(entry.subscribe, settings)
        return (found, entry.subscribe) if found else None

    def subscribable(self, settings) -> list[tuple[str, str, str]]:
        """(kind, template id, term) of every kind users can subscribe to now."""
        found = ((kind, self.subscription(kind, settings)) for kind in self.entries)
        return [(kind, sub[0], sub[1].term) for kind, sub in found if sub is not None]


def _field(where: str, key, spec, facts: tuple[str, ...]) -> Field:
    if not isinstance(key, str) or not re.fullmatch(r"[a-z_]+[0-9]*", key):
        raise TemplateConfigError(f"{where}: {key!r} is not a WeChat field key like thing1")
    if key in NOT_SHOWN:
        raise TemplateConfigError(f"{where}.{key}: WeChat no longer shows first/remark "
                                  "(since May 2023); put the fact in a keyword field")
    if not isinstance(spec, dict) or set(spec) != {"fact", "type"}:
        raise TemplateConfigError(f"{where}.{key}: expected {{fact: …, type: …}}, got {spec!r}")
    if spec["type"] not in TYPES:
        raise TemplateConfigError(f"{where}.{key}: unknown type {spec['type']!r} "
                                  f"(one of {', '.join(TYPES)})")
    if type_of_key(key) not in (None, spec["type"]):
        raise TemplateConfigError(f"{where}.{key}: the key says {type_of_key(key)}, "
                                  f"the type says {spec['type']}")
    if spec["fact"] not in facts:
        raise TemplateConfigError(f"{where}.{key}: unknown fact {spec['fact']!r} "
                                  f"(this kind carries {', '.join(facts)})")
    return Field(key, spec["fact"], spec["type"])


def _subscribe(where: str, spec, fields: tuple[Field, ...], facts) -> Subscribe:
    """The `subscribe:` block: a subscription template takes typed field keys only."""
    if not isinstance(spec, dict) or set(spec) - SUBSCRIBE_KEYS:
        raise TemplateConfigError(f"{where}: expected template_id, term and optionally "
                                  f"fields, got {spec!r}")
    template_id = spec.get("template_id")
    if not isinstance(template_id, str) or not template_id.strip():
        raise TemplateConfigError(f"{where}.template_id is missing: the subscription template "
                                  "id from the WeChat console, or a setting such as "
                                  "WECHAT_SUBSCRIBE_VISIT")
    if spec.get("term") not in TERMS:
        raise TemplateConfigError(f"{where}.term: {spec.get('term')!r} is not long or once "
                                  "(as the template is in the WeChat console)")
    if "fields" in spec:
        if not isinstance(spec["fields"], dict) or not spec["fields"]:
            raise TemplateConfigError(f"{where}.fields: expected at least one field")
        fields = tuple(_field(f"{where}.fields", k, v, facts) for k, v in spec["fields"].items())
    untyped = [f.key for f in fields if type_of_key(f.key) != f.type]
    if untyped:
        raise TemplateConfigError(f"{where}: a subscription notice needs typed field keys "
                                  f"(thing1, time2, …), not {', '.join(untyped)}")
    return Subscribe(template_id.strip(), spec["term"], fields)


def _entry(kind: str, spec) -> Entry:
    where = f"kinds.{kind}"
    if kind not in KINDS:
        raise TemplateConfigError(f"{where}: unknown kind of push {kind!r} "
                                  f"(one of {', '.join(KINDS)})")
    if not isinstance(spec, dict):
        raise TemplateConfigError(f"{where}: expected channel, template_id and fields")
    if set(spec) - ENTRY_KEYS:
        raise TemplateConfigError(f"{where}: unknown key(s) {sorted(set(spec) - ENTRY_KEYS)}")
    channel = spec.get("channel", "template")
    if channel not in CHANNELS:
        raise TemplateConfigError(f"{where}.channel: {channel!r} is not template or subscribe")
    template_id = spec.get("template_id")
    if not isinstance(template_id, str) or not template_id.strip():
        raise TemplateConfigError(f"{where}.template_id is missing: the template id from the "
                                  "WeChat console, or a setting such as WECHAT_TEMPLATE_NOTICE")
    fields = spec.get("fields")
    if not isinstance(fields, dict) or not fields:
        raise TemplateConfigError(f"{where}.fields: expected at least one field")
    facts = KINDS[kind].facts + COMMON_FACTS if kind != GENERIC else COMMON_FACTS
    fields = tuple(_field(f"{where}.fields", k, v, facts) for k, v in fields.items())
    subscribe = spec.get("subscribe")
    if channel == "subscribe" and subscribe is None:
        raise TemplateConfigError(f"{where}.subscribe is missing: channel subscribe needs the "
                                  "subscription template (template_id, term long or once)")
    if subscribe is not None:
        subscribe = _subscribe(f"{where}.subscribe", subscribe, fields, facts)
    return Entry(kind, channel, template_id.strip(), fields, subscribe)


def parse(raw) -> Notices:
    """Build Notices from the YAML document; TemplateConfigError says what is wrong."""
    raw = {} if raw is None else raw
    if not isinstance(raw, dict) or set(raw) - {"kinds"}:
        raise TemplateConfigError("the file must be a mapping with one key, kinds")
    kinds = raw.get("kinds") or {}
    if not isinstance(kinds, dict):
        raise TemplateConfigError("kinds: expected a mapping of kind -> entry")
    return Notices({kind: _entry(kind, spec) for kind, spec in kinds.items()})




def check_kinds() -> None:
    """Every push's fact expressions compile and give its kind's what pattern what it needs."""
    for kind in KINDS.values():
        for template, expressions in kind.pushes.items():
            if tuple(expressions) != kind.facts:
                raise TemplateConfigError(f"{template}: facts differ from its kind {kind.name}")
            for name, expression in expressions.items():
                _compiled(expression)
            kind.what.format(**dict.fromkeys(expressions, ""))


def check(settings) -> None:
    """Refuse to start with a broken templates.yaml; say which kinds fall back to the notice."""
    path = NOTICES_FILE.path(settings)
    try:
        check_kinds()
        notices = load_notices(settings)
    except (OSError, yaml.YAMLError, TemplateConfigError, TemplateError, KeyError) as exc:
        raise SettingsError(f"{path} is not usable: {exc}") from exc
    if settings.sandbox:
        return
    unset = [e.kind for e in notices.entries.values() if not template_id_of(e, settings)]
    if unset:
        logger.warning("%s: no template id set for %s: these pushes use %s (generic what/when)",
                       path, ", ".join(unset), NOTICE_SETTING)
    unsubscribable = [e.kind for e in notices.entries.values() if e.channel == "subscribe"
                      and not notices.subscription(e.kind, settings)]
    if unsubscribable:
        logger.warning("%s: no subscription template id set for %s: these pushes go as "
                       "template messages", path, ", ".join(unsubscribable))


NOTICES_FILE = ConfigFile(SETTINGS_KEY, DEFAULT_PATH, lambda raw, zone: parse(raw))
load_notices = NOTICES_FILE.load
