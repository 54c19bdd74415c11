"""The staff web console (/console): login, open tickets with SLA timers, ticket history.

Other features add pages with `console_pages` (see handlers/console/pages.py).
"""
from handlers.console import tickets
from handlers.console.guard import csrf_field, supervisor_required, user  # noqa: F401
from handlers.console.pages import ConsolePage  # noqa: F401
from handlers.console.web import PAGES as _WEB_PAGES
from handlers.console.web import blueprint  # noqa: F401

console_pages = tickets.PAGES + _WEB_PAGES
