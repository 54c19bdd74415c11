"""SQLAlchemy models; importing this package registers every table on Base.metadata."""
import importlib
import pkgutil

from models.base import Base, utcnow  # noqa: F401
from models.messages import Delivery, InboundMessage, WebhookNonce  # noqa: F401
from models.people import Binding, Cadre, Follower, Staff, StaffInvite  # noqa: F401

# Feature areas add models/<area>.py; import them all so metadata is complete everywhere.
for _info in pkgutil.iter_modules(__path__):
    importlib.import_module(f"models.{_info.name}")
