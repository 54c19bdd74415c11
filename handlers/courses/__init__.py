"""Class sign-ups (老年大学 / 微课堂): courses, seats and wait-list, reminders, rosters."""
from handlers.courses.chat import handlers  # noqa: F401
from handlers.courses.cli import cli_commands  # noqa: F401
from handlers.courses.jobs import jobs  # noqa: F401
from handlers.courses.web import blueprint, console_pages  # noqa: F401
