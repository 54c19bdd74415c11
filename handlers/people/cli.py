"""CLI: `roster import|unbind`, `staff invite|list|remove|password`, `group create|add`."""
from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import click
from flask.cli import AppGroup
from sqlalchemy import select

from bot import yinling
from handlers.people import service
from handlers.people.importer import RosterFileError, import_roster, mark_deceased
from models import utcnow
from models.groups import BroadcastGroup
from models.people import Binding, Cadre, Staff

roster_cli = AppGroup("roster", help="The cadre roster.")
staff_cli = AppGroup("staff", help="Staff members and their invites.")
group_cli = AppGroup("group", help="Broadcast groups and their admins.")


def _db():
    return yinling().db


# ---- roster --------------------------------------------------------------------------------
@roster_cli.command("import")
@click.argument("file", type=click.Path(path_type=Path))
def roster_import(file: Path):
    """Import cadres from .csv or .xlsx; re-import updates by phone."""
    try:
        with _db().session() as session:
            result = import_roster(session, file)
    except RosterFileError as exc:
        raise click.ClickException(str(exc)) from exc
    render = yinling().render
    for number, error in result.rejected:
        reason = render("people/import_reason", code=error.code, **error.values)
        click.echo(f"rejected row {number}: {reason}")
    click.echo(f"added {result.added}, updated {result.updated}, "
               f"rejected {len(result.rejected)}")


@roster_cli.command("unlock")
@click.argument("phone")
def roster_unlock(phone: str):
    """Lift the pause on binding to a cadre after too many wrong answers."""
    with _db().session() as session:
        cadre = session.scalar(select(Cadre).where(Cadre.phone == phone.strip()))
        if cadre is None:
            raise click.ClickException(f"no cadre with phone {phone}")
        lifted = service.lift_pause(session, cadre.id)
        cadre_id = cadre.id
    click.echo(f"cadre {cadre_id}: binding " + ("pause lifted" if lifted else "was not paused"))


@roster_cli.command("deceased")
@click.argument("phone")
@click.option("--undo", is_flag=True, help="a mistake: the cadre is not deceased")
def roster_deceased(phone: str, undo: bool):
    """Mark a cadre deceased: no greeting, reminder, visit notice or broadcast goes to them or
    their family about them any more; bindings and history are kept."""
    with _db().session() as session:
        cadre = session.scalar(select(Cadre).where(Cadre.phone == phone.strip()))
        if cadre is None:
            raise click.ClickException(f"no cadre with phone {phone}")
        changed = mark_deceased(cadre, not undo,
                                datetime.now(yinling().settings.zone).date())
        cadre_id = cadre.id
    state = "not deceased" if undo else "deceased"
    click.echo(f"cadre {cadre_id}: marked {state}" if changed else
               f"cadre {cadre_id}: already {state}")


@roster_cli.command("unbind")
@click.argument("phone")
@click.option("--family", is_flag=True,
              help="remove the cadre's family bindings instead of the cadre's own")
def roster_unbind(phone: str, family: bool):
    """Free a cadre's WeChat binding (e.g. a new phone): they can then `绑定` again."""
    with _db().session() as session:
        cadre = session.scalar(select(Cadre).where(Cadre.phone == phone.strip()))
        if cadre is None:
            raise click.ClickException(f"no cadre with phone {phone}")
        relation = "family" if family else "self"
        removed = service.unbind_cadre(session, cadre.id, relation, utcnow())
        cadre_id = cadre.id
    if not removed:
        raise click.ClickException(f"cadre {cadre_id} has no {relation} binding")
    click.echo(f"cadre {cadre_id}: {removed} {relation} binding(s) removed; "
               "they can bind again with 绑定 / 家属绑定")


@roster_cli.command("qrcodes")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True,
              help="folder for one SVG per cadre and index.csv")
@click.option("--phone", "phones", multiple=True, help="only these cadres (default: every "
              "active cadre nobody is bound to as themselves)")
def roster_qrcodes(out: Path, phones: tuple[str, ...]):
    """Print-ready personal QR codes: scanning one binds to that cadre without typing."""
    import csv

    import qrcode
    import qrcode.image.svg

    from bot.wechat import ApiError

    client = yinling().dispatcher.deliverer.client
    out.mkdir(parents=True, exist_ok=True)
    made = []
    with _db().session() as session:
        for cadre in _cadres_for_codes(session, phones):
            code = service.issue_bind_code(session, cadre, utcnow())
            try:
                url = client.create_qrcode(f"{service.BIND_SCENE}{code.token}",
                                           int(service.BIND_CODE_VALID.total_seconds()))
            except ApiError as err:
                raise click.ClickException(f"WeChat refused qrcode/create: {err}") from err
            name = f"{cadre.phone[-4:]}-{cadre.id}.svg"
            qrcode.make(url, image_factory=qrcode.image.svg.SvgPathImage).save(out / name)
            made.append((cadre.name, cadre.phone, name, f"{service.BIND_SCENE}{code.token}"))
    with open(out / "index.csv", "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["姓名", "手机号", "文件", "场景"])
        writer.writerows(made)
    click.echo(f"{len(made)} QR code(s) written to {out} (valid "
               f"{service.BIND_CODE_VALID.days} days, each works once)")


def _cadres_for_codes(session, phones: tuple[str, ...]) -> list[Cadre]:
    """The cadres asked for by phone, else every active cadre without an own binding."""
    if phones:
        found, missing = service.cadres_by_phone(session, phones)
        if missing:
            raise click.ClickException(f"not in the roster: {', '.join(missing)}")
        return found
    bound = select(Binding.cadre_id).where(Binding.relation == "self")
    return list(session.scalars(select(Cadre).where(Cadre.active.is_(True),
                                                    Cadre.id.not_in(bound)).order_by(Cadre.id)))


# ---- staff ---------------------------------------------------------------------------------
@staff_cli.command("invite")
@click.argument("name")
@click.option("--role", type=click.Choice(service.STAFF_ROLES), default="staff",
              show_default=True)
def staff_invite(name: str, role: str):
    """Print a one-time code (valid 7 days); the person sends `工作人员 CODE`."""
    with _db().session() as session:
        invite = service.create_invite(session, name.strip(), role, utcnow())
        code, expires = invite.code, invite.expires_at
    click.echo(f"invite for {name} as {role}, valid until {expires:%Y-%m-%d %H:%M} UTC; "
               "they send: 工作人员 CODE")
    click.echo(code)


@staff_cli.command("list")
def staff_list():
    """Every staff member: name, role, duty, whether active and bound to WeChat."""
    with _db().session() as session:
        rows = session.scalars(select(Staff).order_by(Staff.active.desc(), Staff.name)).all()
        for s in rows:
            click.echo(f"{s.name}\t{s.role}\t{'on duty' if s.on_duty else 'off duty'}\t"
                       f"{'active' if s.active else 'removed'}\t"
                       f"{'wechat' if s.openid else 'no wechat'}")
        if not rows:
            click.echo("no staff yet; add one with: staff invite NAME")


@staff_cli.command("remove")
@click.argument("name")
def staff_remove(name: str):
    """Deactivate a staff member (nothing is deleted)."""
    with _db().session() as session:
        count = service.remove_staff(session, name.strip())
    if not count:
        raise click.ClickException(f"no active staff member named {name}")
    click.echo(f"removed {count} staff member(s) named {name}")


@staff_cli.command("password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from the first line of standard input (scripts).")
def staff_password(name: str, password_stdin: bool):
    """Set a staff member's web console password (asked twice, not shown)."""
    from bot.console.auth import PasswordError, set_password

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Console password", hide_input=True, confirmation_prompt=True)
    try:
        with _db().session() as session:
            set_password(session, name, password)
    except PasswordError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"console password set for {name}; they log in at /console/login")


# ---- groups --------------------------------------------------------------------------------
@group_cli.command("create")
@click.argument("name")
@click.option("--admin", "admins", multiple=True, required=True, help="admin's phone")
def group_create(name: str, admins):
    """Create a broadcast group (or add admins to an existing one)."""
    with _db().session() as session:
        group = session.scalar(select(BroadcastGroup).where(BroadcastGroup.name == name))
        created = group is None
        if created:
            group = BroadcastGroup(name=name)
            session.add(group)
            session.flush()
        cadres, missing = service.cadres_by_phone(session, admins)
        service.add_members(session, group, cadres, admin=True)
    for phone in missing:
        click.echo(f"not in the roster: {phone}")
    click.echo(f"group {name} {'created' if created else 'updated'}: {len(cadres)} admin(s)")


@group_cli.command("add")
@click.argument("phones", nargs=-1, required=True)
@click.option("--group", "group_name", required=True)
def group_add(phones, group_name: str):
    """Add cadres (by phone) to a group as members."""
    with _db().session() as session:
        group = session.scalar(select(BroadcastGroup).where(BroadcastGroup.name == group_name))
        if group is None:
            raise click.ClickException(f"no group named {group_name}; create it first")
        cadres, missing = service.cadres_by_phone(session, phones)
        added = service.add_members(session, group, cadres, admin=False)
    for phone in missing:
        click.echo(f"not in the roster: {phone}")
    click.echo(f"group {group_name}: {added} member(s) added")


cli_commands = [roster_cli, staff_cli, group_cli]
