"""People: roster import, binding (self and family), staff invites and duty, group admins."""
from handlers.people.chat import handlers  # noqa: F401
from handlers.people.cli import cli_commands  # noqa: F401
