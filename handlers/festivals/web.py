"""Console page for festival visits: the answers to the next (or chosen) festival's visit
notice — preferred times, not at home, not answered — with a picker for the festival."""
from __future__ import annotations

import logging
from datetime import date, datetime

from flask import Blueprint, abort, render_template, request

from bot import yinling
from bot.console.pages import ConsolePage
from handlers.festivals import service
from handlers.festivals.calendar import load_calendar

logger = logging.getLogger(__name__)

blueprint = Blueprint("festivals", __name__, url_prefix="/console/festivals")
console_pages = [ConsolePage("festivals.index", "console/nav/festivals.txt", order=50)]


def _today() -> date:
    return datetime.now(yinling().settings.zone).date()


def choices(db, cal, today: date) -> list[dict]:
    """The picker: every festival with visits and the date staff mean by it (as in chat)."""
    return [{"key": f.key, "name": f.name, "day": service.occurrence_for_staff(db, f, today)}
            for f in cal.festivals if f.visit]


@blueprint.get("/")
def index():
    """The visit answers of one festival date: the chosen festival, else the next one."""
    cal, today = load_calendar(yinling().settings), _today()
    key = request.args.get("f", "").strip()
    with yinling().db.session() as db:
        options = choices(db, cal, today)
        if key:
            festival = cal.get(key)
            if festival is None or not festival.visit:
                abort(404)
            day = service.occurrence_for_staff(db, festival, today)
        else:
            found = service.next_visit(cal, today)
            if found is None:
                return render_template("console/festivals.html", a=None, options=options)
            festival, day = found
        answers = service.arrangements(db, festival, day)
    return render_template("console/festivals.html", a=answers, options=options, today=today,
                           period=festival.visit_period(day), chosen=festival.key)
