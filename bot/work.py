"""The unit of work every entry point runs in: an inbound message, a job, a console request,
a CLI command (cosmicpython ch. 6, one step further).

A `Work` holds the session, `now`, the settings, rendering and the features' configs, and
collects the pushes made through it. `work_for` commits the session, then hands what was
pushed to the dispatcher — so a push is never sent for a change that was rolled back, and no
entry point writes its own "collect pushes, dispatch after commit" adapter.

    with work_for(yl) as work:
        ticket = issues.service.resolve(work, staff, number, note)
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from sqlalchemy.orm import Session


@dataclass(kw_only=True)
class Work:
    """One unit of work: session, now, services; pushes collected until the commit."""

    services: Any
    db: Session
    now: datetime
    pushed: list = field(default_factory=list)
    push_kind: str = "reply"   # what a single push is, unless the caller says
    bulk_kind: str = "bulk"    # what each of push_many's messages is
    _configs: dict = field(default_factory=dict, repr=False)

    @property
    def settings(self):
        """The app settings."""
        return self.services.settings

    def reply(self, template: str, **values) -> str:
        """Render a template."""
        return self.services.render(template, **values)

    def config(self, loader: Callable[[Any], Any]):
        """A feature's config, `loader(settings)`, loaded once per unit of work."""
        if loader not in self._configs:
            self._configs[loader] = loader(self.settings)
        return self._configs[loader]

    def push(self, openid: str, template: str, *, campaign: str | None = None,
             kind: str | None = None, **values):
        """Queue a message to anyone, committed with this unit's changes, sent after."""
        delivery = self.services.outbox.push(self.db, openid, template, values,
                                             campaign=campaign, kind=kind or self.push_kind,
                                             now=self.now)
        if delivery is not None:
            self.pushed.append(delivery)
        return delivery

    def push_many(self, openids, template: str, *, campaign: str, kind: str | None = None,
                  **values) -> list:
        """Queue one message to many in one batch, keyed (campaign, openid)."""
        deliveries = self.services.outbox.push_many(self.db, openids, template, values,
                                                    campaign=campaign,
                                                    kind=kind or self.bulk_kind, now=self.now)
        self.pushed.extend(deliveries)
        return deliveries

    def adopt(self, deliveries) -> None:
        """Deliveries queued for this unit elsewhere (a service's own batch), sent after."""
        self.pushed.extend(d for d in deliveries if d is not None)

    def dispatch(self) -> None:
        """Hand what was pushed to the dispatcher (call only after the commit)."""
        pushed, self.pushed = self.pushed, []
        self.services.outbox.after_commit(pushed)


@contextmanager
def work_for(yl, *, now: datetime | None = None, cls: type[Work] = Work, **fields):
    """Open a unit of work on the app (`app.extensions['yinling']`): commit, then dispatch."""
    now = now or datetime.now(yl.settings.zone)
    with yl.db.session() as session:
        work = cls(services=yl.services, db=session, now=now, **fields)
        yield work
    work.dispatch()
