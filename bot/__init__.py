"""The Flask application factory: `bot.create_app()` is the WSGI app."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, current_app

from bot import media, notices, understand
from bot.context import Services
from bot.conversation import Conversation
from bot.db import Database
from bot.dialog import DialogStore
from bot.inbox import Inbox
from bot.kv import Breaker, connect, hot_path_client
from bot.logs import configure_logging
from bot.outbox import Outbox
from bot.render import Renderer
from bot.router import Router
from bot.settings import Settings, load_settings
from bot.spool import Spool
from bot.worker import make_dispatcher

logger = logging.getLogger(__name__)


@dataclass
class Yinling:
    """Everything built once per app, reachable as app.extensions['yinling']."""

    settings: Settings
    db: Database
    redis: Any
    router: Router
    render: Renderer
    dialogs: DialogStore
    outbox: Outbox
    dispatcher: Any
    inbox: Inbox
    services: Services

    def close(self) -> None:
        """Stop this app's threads for good, in order: the messages in hand finish, the
        downloads in hand finish, deliveries already handed over go out, the pool closes."""
        self.inbox.close()
        self.services.media.shutdown()
        self.dispatcher.close()
        self.db.dispose()


def yinling(app: Flask | None = None) -> Yinling:
    """The app's services: the one accessor (the current app's, unless one is given)."""
    return (app or current_app).extensions["yinling"]


FEATURE_PARTS = ("handlers", "jobs", "cli_commands", "blueprint", "check")


def feature_modules() -> list:
    """Every module or package under handlers/ that exposes one of FEATURE_PARTS."""
    import importlib
    import pkgutil

    import handlers as package

    found = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"handlers.{info.name}")
        if info.ispkg and not any(hasattr(module, a) for a in FEATURE_PARTS):
            continue
        found.append(module)
    return found


def create_app(overrides: dict | None = None, *, redis_client=None) -> Flask:
    """Build the app from settings (+ overrides); nothing is built at import time."""
    settings = load_settings(overrides)
    configure_logging()
    app = Flask(__name__, template_folder="../templates")
    if settings.trusted_proxies:  # behind nginx: the client is in X-Forwarded-For
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies,
                                x_proto=settings.trusted_proxies)
    app.config.update(SECRET_KEY=settings.secret_key, SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_SECURE=settings.env == "production")
    db = Database(settings.database_url)
    redis_client = redis_client if redis_client is not None else connect(settings.redis_url)
    render = Renderer()
    router = Router()
    features = feature_modules()
    notices.check(settings)  # config/templates.yaml, validated at start like features' files
    media.check(settings)    # YINLING_MEDIA_DIR: a folder this user can write
    for module in features:
        if hasattr(module, "check"):  # a feature's own config files, validated at start
            module.check(settings)
        if hasattr(module, "handlers"):
            router.register(module.handlers)
    router.phrasings = understand.load(command_words=router.command_words())
    # The webhook's path talks to Redis with short timeouts behind one breaker (issue 13.4).
    hot, breaker = hot_path_client(redis_client), Breaker()
    dispatcher = make_dispatcher(settings, db, redis_client, render, hot=(hot, breaker))
    outbox = Outbox(render, dispatcher, settings)
    dialogs = DialogStore(settings.dialog_timeout_seconds)
    keeper = media.MediaKeeper(settings, db, redis_client, hot=(hot, breaker), outbox=outbox)
    services = Services(settings=settings, render=render, dialogs=dialogs, outbox=outbox,
                        router=router, media=keeper)
    spool = Spool(Path(settings.spool_dir), settings.spool_max_files, settings.spool_max_bytes)
    inbox = Inbox(db, hot, Conversation(services), settings.reply_budget_seconds,
                  spool=spool, record_limit=settings.record_limit_seconds, breaker=breaker)
    app.extensions["yinling"] = Yinling(settings, db, redis_client, router, render, dialogs,
                                        outbox, dispatcher, inbox, services)
    from bot import webhook

    app.register_blueprint(webhook.bp)
    for module in features:
        if hasattr(module, "blueprint"):  # a feature's web pages (e.g. the staff console)
            app.register_blueprint(module.blueprint)
    from bot.console import guard

    guard.install(app, features)
    app.before_request(dispatcher.start)  # serving: pick up deliveries a crash left behind
    from bot.cli import register_cli

    register_cli(app)
    if settings.sandbox:
        logger.info("sandbox mode: outbound messages are recorded, not sent to WeChat")
    return app
