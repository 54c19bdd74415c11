"""急难愁盼 (urgent-and-anxious) reports: report in chat, triage in chat, SLA escalation."""
import yaml

from bot.settings import SettingsError
from handlers.issues.chat import handlers  # noqa: F401
from handlers.issues.jobs import jobs  # noqa: F401
from handlers.issues.policy import PolicyError, load_policy


def check(settings) -> None:
    """Refuse to start with a missing or broken issue_categories.yaml (not at the first report)."""
    try:
        load_policy(settings)
    except (OSError, yaml.YAMLError, PolicyError, ValueError, TypeError) as exc:
        raise SettingsError(f"config/issue_categories.yaml is not usable: {exc}") from exc
