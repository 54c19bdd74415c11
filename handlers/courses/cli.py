"""CLI: `course create|import|list|roster`."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click
from flask.cli import AppGroup

from bot import yinling
from bot.work import work_for
from handlers.courses import export, service
from handlers.courses.importer import (
    CourseFileError,
    RowError,
    course_data,
    import_courses,
)

course_cli = AppGroup("course", help="Courses (老年大学 / 微课堂): sessions, seats, rosters.")


def _reason(error: RowError) -> str:
    return yinling().render("courses/import_reason", code=error.code, **error.values)


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M")


@course_cli.command("create")
@click.argument("name")
@click.option("--session", "sessions", multiple=True, required=True,
              help='a session, "YYYY-MM-DD HH:MM" (repeat for each)')
@click.option("--venue", required=True)
@click.option("--capacity", required=True)
@click.option("--deadline", required=True, help="last day of sign-up, YYYY-MM-DD")
def course_create(name, sessions, venue, capacity, deadline):
    """Create a course with its sessions, venue, seats and sign-up deadline."""
    yl = yinling()
    try:
        data = course_data(name, ";".join(sessions), venue, capacity, deadline,
                           yl.settings.zone)
    except RowError as exc:
        raise click.ClickException(_reason(exc)) from None
    with yl.db.session() as session:
        if service.course_named(session, data.name) is not None:
            raise click.ClickException(f"a course named {data.name} already exists "
                                       "(use `course import` to change it)")
        course = service.create_course(session, data)
        number = course.id
    click.echo(f"course {number} created: {data.name}, {len(data.sessions)} session(s) from "
               f"{_when(data.sessions[0])}, {data.capacity} seats, sign-up until "
               f"{data.deadline.isoformat()}")


@course_cli.command("import")
@click.argument("file", type=click.Path(path_type=Path))
def course_import(file: Path):
    """Import courses from .csv or .xlsx; re-import updates a course by name."""
    yl = yinling()
    yl.dispatcher.start()  # without Redis, this process sends what the import pushes
    try:
        with work_for(yl) as work:
            result = import_courses(work.db, file, yl.settings.zone, work.now, work.push)
    except CourseFileError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        yl.dispatcher.shutdown()  # waits for what was dispatched
    for number, error in result.rejected:
        click.echo(f"rejected row {number}: {_reason(error)}")
    tail = f", {result.promoted} moved from the wait-list" if result.promoted else ""
    click.echo(f"added {result.added}, updated {result.updated}, "
               f"rejected {len(result.rejected)}{tail}")


@course_cli.command("list")
@click.option("--all", "show_all", is_flag=True, help="also courses no longer open")
def course_list(show_all):
    """Courses: number, name, next session, venue, seats taken / capacity, wait-list."""
    yl = yinling()
    now = datetime.now(yl.settings.zone)
    with yl.db.session() as session:
        views = service.all_courses(session, now)
    shown = [v for v in views if show_all or v.upcoming]
    for v in shown:
        nxt = _when(v.first) if v.first else "finished"
        click.echo(f"{v.number}\t{v.name}\tnext {nxt} ({len(v.upcoming)}/{v.total_sessions} "
                   f"left)\t{v.venue}\t{v.enrolled}/{v.capacity} enrolled, {v.waiting} waiting"
                   f"\tsign-up until {v.deadline.isoformat()}"
                   f"{'' if v.open else ' (closed)'}")
    if not shown:
        click.echo("no courses yet; add one with: course create NAME --session ... "
                   "or course import FILE")


@course_cli.command("roster")
@click.argument("number", type=int)
@click.option("--xlsx", "xlsx", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write the roster to this .xlsx file")
def course_roster(number: int, xlsx: Path | None):
    """Enrolled people, then the wait-list: name, phone, branch, state, signed-up time."""
    yl = yinling()
    with yl.db.session() as session:
        try:
            rows = service.roster(session, number, yl.settings.zone)
        except service.Refusal:
            raise click.ClickException(f"no course number {number}") from None
        name = session.get(service.Course, number).name
    table = export.roster_lines(yl.render, rows)
    if xlsx is None:
        for line in table:
            click.echo("\t".join(line))
    else:
        xlsx.parent.mkdir(parents=True, exist_ok=True)
        export.write_roster_xlsx(xlsx, yl.render, name, table)
    enrolled = sum(r.state == "enrolled" for r in rows)
    where = f" written to {xlsx}" if xlsx else ""
    click.echo(f"course {number} {name}: {enrolled} enrolled, {len(rows) - enrolled} "
               f"waiting{where}")


cli_commands = [course_cli]
