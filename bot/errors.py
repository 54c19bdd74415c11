"""Refusal: a request that cannot be done as asked, answered with a sentence, not an error."""
from __future__ import annotations


class Refusal(Exception):
    """`code` (and `values`) pick the answer in a feature's template; features subclass it
    and name that template (a page that acts through the service shows it too)."""

    template = "core/refused"

    def __init__(self, code: str, **values):
        super().__init__(code)
        self.code, self.values = code, values
