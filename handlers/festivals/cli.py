"""CLI: `festivals [--year Y]` prints a year's festival calendar."""
from __future__ import annotations

from datetime import datetime

import click
from flask.cli import with_appcontext

from bot import yinling
from handlers.festivals.calendar import MAX_YEAR, MIN_YEAR, load_calendar, lunar_label


@click.command("festivals")
@click.option("--year", type=click.IntRange(MIN_YEAR, MAX_YEAR), default=None,
              help="Gregorian year (default: this year in YINLING_TZ).")
@with_appcontext
def festivals(year):
    """Print the year's festivals, one a line: date, name, lunar date, notice day, audience."""
    settings = yinling().settings
    year = year or datetime.now(settings.zone).year
    for day, festival in load_calendar(settings).year(year):
        click.echo(describe(day, festival))


def describe(day, festival) -> str:
    """One line: `2026-09-25  中秋节  农历八月十五  走访通知9月18日  全体`."""
    month, lunar_day, leap = lunar_label(day)
    render = yinling().render
    return render("festivals/cli_line", day=day, festival=festival, lunar_month=month,
                  lunar_day=lunar_day, leap=leap)


cli_commands = [festivals]
