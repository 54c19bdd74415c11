"""Group broadcasts (群发) by group admins, their delivery reports, and 通知 for everyone."""
from handlers.broadcasts.chat import handlers  # noqa: F401
from handlers.broadcasts.web import blueprint, console_pages  # noqa: F401
