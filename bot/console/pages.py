"""The console's page registry: features list their pages, the nav is built from them.

A feature adds a console page by exposing, next to its `blueprint`, a module-level
`console_pages = [ConsolePage("fees.console_branches", "fees/console_nav.txt", order=20)]`.
Its blueprint should use a url_prefix under `/console/` (e.g. `/console/fees`): every
route there is then behind the console login, CSRF check and security headers, with no
code of its own (see bot/console/guard.py). Page templates extend
`console/base.html`; forms add `{{ csrf_field() }}`.
"""
from __future__ import annotations

from dataclasses import dataclass

from bot.roles import STAFF, SUPERVISOR


@dataclass(frozen=True)
class ConsolePage:
    """One entry of the console navigation."""

    endpoint: str            # Flask endpoint of the page, e.g. "issues.tickets"
    label_template: str      # template (under templates/) whose text is the nav label
    order: int = 50          # position in the nav, lowest first
    role: str = STAFF        # STAFF (everyone who can log in) or SUPERVISOR

    def visible_to(self, role: str) -> bool:
        """Whether a staff member with this role sees (and may open) the page."""
        return self.role == STAFF or role == SUPERVISOR


def collect_pages(modules) -> list[ConsolePage]:
    """Every ConsolePage the feature modules expose, in nav order."""
    pages = [p for m in modules for p in getattr(m, "console_pages", ())]
    return sorted(pages, key=lambda p: (p.order, p.endpoint))
