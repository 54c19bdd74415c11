"""Jinja2 rendering of every sentence a user reads (templates/)."""
from __future__ import annotations

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from bot.settings import ROOT


class Renderer:
    """Renders `feature/name.txt` templates to trimmed text.

    Templates are read once per process (no `auto_reload`: a stat of the file on every
    render, on the webhook's path); a changed template takes effect at the next start."""

    def __init__(self, folder=ROOT / "templates"):
        self.env = Environment(loader=FileSystemLoader(str(folder)), trim_blocks=True,
                               lstrip_blocks=True, undefined=StrictUndefined,
                               autoescape=False, auto_reload=False)

    def __call__(self, template: str, /, **values) -> str:
        """Render a template by name; `.txt` may be omitted."""
        if "." not in template.rsplit("/", 1)[-1]:
            template += ".txt"
        return self.env.get_template(template).render(**values).strip()
