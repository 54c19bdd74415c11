"""急难愁盼 (urgent-and-anxious) reports: report in chat, triage in chat, SLA escalation,
and the console's ticket pages."""
from handlers.issues.chat import handlers  # noqa: F401
from handlers.issues.jobs import jobs  # noqa: F401
from handlers.issues.policy import POLICY_FILE
from handlers.issues.web import blueprint, console_pages  # noqa: F401


def check(settings) -> None:
    """Refuse to start with a missing or broken config/issue_categories.yaml."""
    POLICY_FILE.check(settings)
