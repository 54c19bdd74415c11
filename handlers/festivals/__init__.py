"""Festival visit notices and greetings, birthday greetings (PRODUCT.md 7.5)."""
from handlers.festivals.calendar import CALENDAR_FILE
from handlers.festivals.chat import handlers  # noqa: F401
from handlers.festivals.cli import cli_commands  # noqa: F401
from handlers.festivals.jobs import jobs  # noqa: F401
from handlers.festivals.web import blueprint, console_pages  # noqa: F401


def check(settings) -> None:
    """Refuse to start with a missing or broken config/festivals.yaml."""
    CALENDAR_FILE.check(settings)
