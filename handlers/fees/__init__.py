"""Fees (党费 and other fees): ledger import, status in chat, staff marking paid, reminders."""
from handlers.fees.chat import handlers  # noqa: F401
from handlers.fees.cli import cli_commands  # noqa: F401
from handlers.fees.config import FEES_FILE
from handlers.fees.jobs import jobs  # noqa: F401
from handlers.fees.web import blueprint, console_pages  # noqa: F401


def check(settings) -> None:
    """Refuse to start with a missing or broken config/fees.yaml."""
    FEES_FILE.check(settings)
