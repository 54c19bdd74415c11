"""Every `flask --app bot …` command lives here (features add theirs through register_cli)."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

db_cli = AppGroup("db", help="Database migrations.")


def _yl():
    return current_app.extensions["yinling"]


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision):
    """Migrate the database to REVISION (default: head)."""
    from bot.migrate import upgrade

    upgrade(_yl().settings.database_url, revision)
    click.echo(f"database at {revision}")


demo_cli = AppGroup("demo", help="Demo data for trying the bot locally.")


@demo_cli.command("load")
@click.option("--if-empty", is_flag=True, help="Only when the roster is empty.")
def demo_load(if_empty):
    """Load the demo cadres, a bound demo user (demo-cadre-1) and a staff member."""
    from scripts import demo_data

    with _yl().db.session() as session:
        if if_empty and not demo_data.is_empty(session):
            click.echo("demo data: database already has people, left as it is")
            return
        count = demo_data.load(session)
    click.echo(f"demo data: {count} cadres loaded; chat as demo-cadre-1 (bound), "
               "demo-family-1 (family) or demo-staff-1 (staff)")


@click.command("chat")
@click.option("--openid", default="sim-user-0001", show_default=True)
@click.option("--name", default="模拟用户", show_default=True)
@click.option("--url", default="http://127.0.0.1:8000/wechat", show_default=True)
@with_appcontext
def chat(openid, name, url):
    """Chat with the running webhook as a WeChat user (type 退出程序 or Ctrl-D to leave)."""
    from bot.simulator import run_chat

    run_chat(_yl().settings, openid=openid, name=name, url=url)


def register_cli(app) -> None:
    """Attach the core commands and every feature module's `cli_commands`."""
    from bot import feature_modules

    app.cli.add_command(db_cli)
    app.cli.add_command(chat)
    app.cli.add_command(demo_cli)
    for module in feature_modules():
        for command in getattr(module, "cli_commands", ()):
            app.cli.add_command(command)
