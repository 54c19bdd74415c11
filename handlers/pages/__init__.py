"""Pages a push links to (/m/<token>, PRODUCT.md 7.6): the whole message, and the chat's answers
as big buttons for the recipient and the cadre's family; read-only and masked for anyone else."""
from handlers.pages.web import blueprint  # noqa: F401
