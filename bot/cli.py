"""Every `flask --app bot …` command lives here (features add theirs through register_cli)."""
from __future__ import annotations

import os

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from bot import yinling

db_cli = AppGroup("db", help="Database migrations.")


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision):
    """Migrate the database to REVISION (default: head)."""
    from bot.migrate import upgrade

    upgrade(yinling().settings.database_url, revision)
    click.echo(f"database at {revision}")


demo_cli = AppGroup("demo", help="Demo data for trying the bot locally.")


@demo_cli.command("load")
@click.option("--if-empty", is_flag=True, help="Only when the roster is empty.")
def demo_load(if_empty):
    """Load the demo cadres, a bound demo user (demo-cadre-1) and a staff member."""
    from scripts import demo_data

    with yinling().db.session() as session:
        if if_empty and not demo_data.is_empty(session):
            click.echo("demo data: database already has people, left as it is")
            return
        count = demo_data.load(session, yinling().settings.zone)
    click.echo(f"demo data: {count} cadres loaded; chat as demo-cadre-1 (bound), "
               "demo-family-1 (family) or demo-staff-1 (staff)")


@click.command("chat")
@click.option("--openid", default="sim-user-0001", show_default=True)
@click.option("--name", default="模拟用户", show_default=True)
@click.option("--url", default=lambda: f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/wechat",
              show_default="http://127.0.0.1:$PORT/wechat (PORT defaults to 8000)")
@with_appcontext
def chat(openid, name, url):
    """Chat with the running webhook as a WeChat user (type 退出程序 or Ctrl-D to leave)."""
    from bot.simulator import run_chat

    run_chat(yinling().settings, openid=openid, name=name, url=url)


@click.command("worker")
@click.option("--burst", is_flag=True, help="Stop once the queue is empty.")
@click.option("--concurrency", type=click.IntRange(1, 256), default=None,
              help="Deliveries in flight (default YINLING_DELIVERY_CONCURRENCY, 16).")
@with_appcontext
def worker(burst, concurrency):
    """Run a delivery worker (RQ) against REDIS_URL."""
    from bot.worker import WorkerUnavailable, run_worker

    try:
        run_worker(current_app._get_current_object(), burst=burst, concurrency=concurrency)
    except WorkerUnavailable as exc:
        raise click.ClickException(str(exc)) from None


@click.command("scheduler")
@with_appcontext
def scheduler():
    """Run the scheduler (one leader fires jobs however many of these run)."""
    from bot.scheduler import serve

    serve(current_app._get_current_object())


spool_cli = AppGroup("spool", help="Messages this host kept while the database was away.")


@spool_cli.command("replay")
@with_appcontext
def spool_replay():
    """Replay this host's spool now, in order, each message once (before retiring a host)."""
    inbox = yinling().inbox
    if inbox.spool is None:
        raise click.ClickException("no spool configured (YINLING_SPOOL_DIR)")
    handled = 0
    while inbox.spool.pending():
        done = inbox.replay_spool()
        if done == 0:
            break
        handled += done
    left = len(inbox.spool.pending())
    click.echo(f"spool {inbox.spool.folder}: {handled} replayed, {left} waiting"
               + (" (the database is not taking them yet, or another process is on them)"
                  if left else ""))
    if left:
        raise SystemExit(1)


jobs_cli = AppGroup("jobs", help="Scheduled jobs.")


@jobs_cli.command("list")
def jobs_list():
    """List the scheduled jobs with their schedule and next run (local time)."""
    from datetime import datetime

    from bot.scheduler import job_registry, make_trigger

    zone = yinling().settings.zone
    now = datetime.now(zone)
    specs = job_registry()
    if not specs:
        click.echo("no jobs registered")
    for name, spec in sorted(specs.items()):
        trigger = make_trigger(spec, zone)
        upcoming = trigger.get_next_fire_time(None, now)
        when = upcoming.strftime("%Y-%m-%d %H:%M") if upcoming else "-"
        click.echo(f"{name:<22} next {when}  {trigger}  {spec.description}".rstrip())


@jobs_cli.command("run")
@click.argument("job")
@click.option("--now", "now_text", default=None,
              help="Run as if at this local time (ISO, e.g. 2026-10-29T09:00).")
def jobs_run(job, now_text):
    """Run JOB once now, optionally as if at --now (YINLING_TZ)."""
    from bot.scheduler import job_registry, parse_local, run_now

    yl = yinling()
    try:
        now = parse_local(now_text, yl.settings.zone) if now_text else None
    except ValueError:
        raise click.BadParameter(f"not an ISO date-time: {now_text!r}",
                                 param_hint="--now") from None
    if job not in job_registry():
        known = ", ".join(sorted(job_registry())) or "none"
        raise click.UsageError(f"unknown job {job!r} (known: {known})")
    yl.dispatcher.start()
    count = run_now(current_app._get_current_object(), job, now)
    yl.dispatcher.shutdown()  # without REDIS_URL: deliver what the job pushed before exiting
    click.echo(f"{job}: {count}")


menu_cli = AppGroup("menu", help="The custom menu.")


@menu_cli.command("push")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Menu JSON (default config/menu.json).")
def menu_push(path):
    """Create the custom menu from config/menu.json through the WeChat API."""
    import json

    from bot.settings import ROOT
    from bot.wechat import check_menu

    path = path or str(ROOT / "config" / "menu.json")
    with open(path, encoding="utf-8") as fh:
        menu = json.load(fh)
    menu, left_out = _with_public_url(menu, yinling().settings.public_url)
    for name in left_out:
        click.echo(f"{name!r} left out: its page needs YINLING_PUBLIC_URL")
    problems = check_menu(menu)
    if problems:
        raise click.ClickException(f"{path}: " + "; ".join(problems))
    client = yinling().dispatcher.deliverer.client
    result = client.create_menu(menu)
    if not result.ok:
        raise click.ClickException(f"menu not created: {result.outcome.value} ({result.reason})")
    where = "recorded (sandbox mode, nothing sent)" if result.sandbox else "created"
    click.echo(f"menu {where}: {len(menu['button'])} buttons from {path}")


PUBLIC_URL_MARK = "{YINLING_PUBLIC_URL}"


def _with_public_url(menu: dict, public_url: str) -> tuple[dict, list[str]]:
    """The menu with `{YINLING_PUBLIC_URL}` in a view button's url replaced by the address
    the pages are served at (PRODUCT §7.6); without one, those buttons are left out (and
    named), since WeChat opens only a full address."""
    base, left_out = (public_url or "").rstrip("/"), []

    def kept(buttons):
        out = []
        for button in buttons:
            button = dict(button)
            if PUBLIC_URL_MARK in button.get("url", ""):
                if not base:
                    left_out.append(button.get("name"))
                    continue
                button["url"] = button["url"].replace(PUBLIC_URL_MARK, base)
            if button.get("sub_button"):
                button["sub_button"] = kept(button["sub_button"])
            out.append(button)
        return out

    return {**menu, "button": kept(menu.get("button", []))}, left_out


def register_cli(app) -> None:
    """Attach the core commands and every feature module's `cli_commands`."""
    from bot import feature_modules

    app.cli.add_command(db_cli)
    app.cli.add_command(chat)
    app.cli.add_command(demo_cli)
    for command in (worker, scheduler, jobs_cli, menu_cli, spool_cli):
        app.cli.add_command(command)
    for module in feature_modules():
        for command in getattr(module, "cli_commands", ()):
            app.cli.add_command(command)
