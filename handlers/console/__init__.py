"""The staff web console (/console): login, logout, the start page and the staff overview.

The plumbing lives in bot/console/; features add pages with `console_pages` (see
bot/console/pages.py); the ticket pages are handlers/issues/web.py.
"""
from handlers.console.web import PAGES as console_pages  # noqa: F401
from handlers.console.web import blueprint  # noqa: F401
