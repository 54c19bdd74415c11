"""The WeRoBot peers that scripts/bench_webhook.py measures the product against.

    .venv/bin/gunicorn --workers 2 --threads 4 "scripts.echo_werobot:create()"
    WEROBOT_SESSION_FILE=/tmp/s.sqlite3 .venv/bin/gunicorn … "scripts.echo_werobot:create(True)"

Safe mode (WECHAT_TOKEN, WECHAT_AES_KEY, WECHAT_APPID from the environment). `create()` echoes
text messages with sessions off; `create(True)` keeps WeRoBot's default session storage
(SQLiteStorage, in WEROBOT_SESSION_FILE) and its handler reads and writes the session on every
message, as a stateful WeRoBot bot would. Events get WeRoBot's empty answer.
"""
from __future__ import annotations

import os


def create(session: bool = False):
    """The WSGI app of a WeRoBot echo robot, with or without its SQLite session."""
    from werobot import WeRoBot
    from werobot.session.sqlitestorage import SQLiteStorage

    config = {"token": os.environ["WECHAT_TOKEN"],
              "encoding_aes_key": os.environ["WECHAT_AES_KEY"],
              "app_id": os.environ["WECHAT_APPID"]}
    if session:
        storage = SQLiteStorage(os.environ.get("WEROBOT_SESSION_FILE",
                                               "werobot_session.sqlite3"))
        robot = WeRoBot(session_storage=storage, **config)

        @robot.handler
        def remember(message, session):
            session["seen"] = session.get("seen", 0) + 1
            if message.type == "text":
                session["last"] = message.content
                return message.content
            return None
    else:
        robot = WeRoBot(SESSION_STORAGE=False, **config)

        @robot.text
        def echo(message):
            return message.content

    return robot.wsgi
