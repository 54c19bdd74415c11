"""急难愁盼 (urgent-and-anxious) reports: report in chat, triage in chat, SLA escalation."""
from handlers.issues.chat import handlers  # noqa: F401
from handlers.issues.jobs import jobs  # noqa: F401
from handlers.issues.policy import POLICY_FILE


def check(settings) -> None:
    """Refuse to start with a missing or broken config/issue_categories.yaml."""
    POLICY_FILE.check(settings)
