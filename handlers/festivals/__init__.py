"""Festival visit notices and greetings, birthday greetings (PRODUCT.md 7.5)."""
import yaml

from bot.settings import SettingsError
from handlers.festivals.calendar import CalendarError, load_calendar
from handlers.festivals.chat import handlers  # noqa: F401
from handlers.festivals.cli import cli_commands  # noqa: F401
from handlers.festivals.jobs import jobs  # noqa: F401
from handlers.festivals.web import blueprint, console_pages  # noqa: F401


def check(settings) -> None:
    """Refuse to start with a missing or broken festivals.yaml (not at 09:00 on a festival)."""
    try:
        load_calendar(settings)
    except (OSError, yaml.YAMLError, CalendarError, ValueError, TypeError) as exc:
        raise SettingsError(f"config/festivals.yaml is not usable: {exc}") from exc
