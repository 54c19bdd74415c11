"""Every kind of push and the named facts each push carries (for template and subscription
notices, which show a few short fields instead of the whole text).

A push is named by its text template (`festivals/notice`); its kind groups pushes a cadre or
staff member reads alike (visit notice, fee reminder, ticket update…). The facts of a push are
Jinja expressions over the values the push already passes to its text template, plus `now`
(the push's local time), kept with the other sentences users read in templates/push_facts.yaml.
Every push of a kind has the same facts; config/templates.yaml says which fact goes into which
field of the kind's template. Two facts exist for every push: `what` (the kind's `what` pattern
over its facts: the one line a generic notice shows) and `when` (the push's local time).
Templates not listed are of the generic kind `notice`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

GENERIC = "notice"
COMMON_FACTS = ("what", "when")
FACTS_FILE = Path(__file__).resolve().parent.parent / "templates" / "push_facts.yaml"


@dataclass(frozen=True)
class Kind:
    """One kind of push: the generic one-line summary, and the facts of each of its pushes."""

    name: str
    what: str                               # str.format over the facts
    pushes: dict[str, dict[str, str]]       # text template -> {fact: Jinja expression}

    @property
    def facts(self) -> tuple[str, ...]:
        """The facts every push of this kind carries (besides what and when)."""
        return tuple(next(iter(self.pushes.values())))


def load_kinds(path: Path = FACTS_FILE) -> dict[str, Kind]:
    """The kinds of push in templates/push_facts.yaml (read once, at import)."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {name: Kind(name, spec["what"], dict(spec["pushes"])) for name, spec in raw.items()}


KINDS: dict[str, Kind] = load_kinds()
BY_TEMPLATE: dict[str, Kind] = {t: k for k in KINDS.values() for t in k.pushes}


def kind_of(template: str) -> Kind:
    """The kind of the push made with this text template (the generic one when unlisted)."""
    return BY_TEMPLATE.get(template, KINDS[GENERIC])
