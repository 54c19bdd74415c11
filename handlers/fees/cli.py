"""CLI: `fees import FILE`."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click
from flask.cli import AppGroup

from bot import yinling
from handlers.fees.importer import FeeFileError, import_fees
from models import utcnow

fees_cli = AppGroup("fees", help="The fee ledger (党费 and other fees).")


@fees_cli.command("import")
@click.argument("file", type=click.Path(path_type=Path))
def fees_import(file: Path):
    """Import fee rows (手机号, 费用类型, 期间, 金额, 已缴, 缴费日期) from .csv or .xlsx."""
    yl = yinling()
    now = utcnow()
    today = datetime.now(yl.settings.zone).date()
    try:
        with yl.db.session() as session:
            result = import_fees(session, file, today, now)
    except FeeFileError as exc:
        raise click.ClickException(str(exc)) from exc
    for number, error in result.rejected:
        reason = yl.render("fees/import_reason", code=error.code, **error.values)
        click.echo(f"rejected row {number}: {reason}")
    for number, note in result.notes:
        reason = yl.render("fees/import_reason", code=note.code, **note.values)
        click.echo(f"note row {number}: {reason}")
    click.echo(f"added {result.added}, updated {result.updated}, "
               f"rejected {len(result.rejected)}")


cli_commands = [fees_cli]
