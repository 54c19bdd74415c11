"""Fees (党费 and other fees): ledger import, status in chat, staff marking paid, reminders."""
import yaml

from bot.settings import SettingsError
from handlers.fees.chat import handlers  # noqa: F401
from handlers.fees.cli import cli_commands  # noqa: F401
from handlers.fees.config import FeeConfigError, config_path, load_config
from handlers.fees.jobs import jobs  # noqa: F401
from handlers.fees.web import blueprint, console_pages  # noqa: F401


def check(settings) -> None:
    """Refuse to start with a missing or broken config/fees.yaml (not at the first reminder)."""
    try:
        load_config(settings)
    except (OSError, yaml.YAMLError, FeeConfigError, ValueError, TypeError) as exc:
        raise SettingsError(f"{config_path(settings)} is not usable: {exc}") from exc

