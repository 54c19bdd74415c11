"""Console pages for courses: every course (open and past) with seats, enrolled and
wait-listed; one course's roster; and the roster as the same .xlsx `course roster --xlsx` writes."""
from __future__ import annotations

import logging
import re
from datetime import datetime
from urllib.parse import quote

from flask import Blueprint, Response, abort, render_template

from bot import yinling
from bot.console import guard
from bot.console.pages import ConsolePage
from handlers.courses import export, service
from models.courses import Course

logger = logging.getLogger(__name__)

blueprint = Blueprint("courses", __name__, url_prefix="/console/courses")
console_pages = [ConsolePage("courses.index", "console/nav/courses.txt", order=30)]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
UNSAFE_IN_FILENAME = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]+')


def _now() -> datetime:
    return datetime.now(yinling().settings.zone)


def split_courses(views: list[service.CourseView]) -> tuple[list, list]:
    """(courses with a session still ahead, soonest first; finished ones, newest first)."""
    ahead = sorted((v for v in views if v.upcoming), key=lambda v: (v.first, v.number))
    past = sorted((v for v in views if not v.upcoming), key=lambda v: -v.number)
    return ahead, past


@blueprint.get("/")
def index():
    """Every active course: schedule, venue, seats, enrolled and wait-listed, sign-up state."""
    now = _now()
    with yinling().db.session() as db:
        ahead, past = split_courses(service.all_courses(db, now))
    return render_template("console/courses.html", ahead=ahead, past=past, now=now)


def _course(db, number: int) -> tuple[Course, list[service.RosterRow]]:
    """The course and its roster, or the 404 page."""
    try:
        rows = service.roster(db, number, yinling().settings.zone)
    except service.Refusal:
        abort(404)
    return db.get(Course, number), rows


@blueprint.get("/<int:number>")
def course(number: int):
    """One course: its details and roster (enrolled, then the wait-list in order)."""
    now = _now()
    with yinling().db.session() as db:
        found, rows = _course(db, number)
        view = service.course_view(db, found, now)
        sessions = [s.starts_at.astimezone(now.tzinfo) for s in found.sessions]
        active = found.active
    return render_template("console/courses_roster.html", c=view, rows=rows, now=now,
                           sessions=sessions, active=active)


def download_name(number: int, name: str) -> str:
    """The file name staff see when saving the roster (no path or quote characters)."""
    clean = UNSAFE_IN_FILENAME.sub("_", name).strip(" ._")[:60] or "course"
    return f"{number}-{clean}-名单.xlsx"


def disposition(number: int, name: str) -> str:
    """Content-Disposition with an ASCII fallback and the UTF-8 name (RFC 6266 / 5987)."""
    return (f'attachment; filename="course-{number}-roster.xlsx"; '
            f"filename*=UTF-8''{quote(download_name(number, name), safe='')}")


@blueprint.get("/<int:number>/roster.xlsx")
def roster_xlsx(number: int):
    """The roster as .xlsx, written by the same code as `course roster N --xlsx FILE`."""
    with yinling().db.session() as db:
        found, rows = _course(db, number)
        name = found.name
    render = yinling().render
    data = export.roster_xlsx_bytes(render, name, export.roster_lines(render, rows))
    logger.info("console: staff %s downloaded the roster of course %s (%d rows)",
                guard.user().id, number, len(rows))
    return Response(data, mimetype=XLSX,
                    headers={"Content-Disposition": disposition(number, name)})
