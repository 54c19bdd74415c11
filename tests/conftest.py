"""Fixtures: an app per backend (SQLite + stand-in always; PostgreSQL + Redis when configured)."""
from __future__ import annotations

import os
import uuid

import fakeredis
import pytest
import redis as redis_lib
from sqlalchemy import create_engine, select, text

import models
from bot import create_app
from tests.wx import WeChat

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "")
BACKENDS = ["sqlite", "postgres"]


def pytest_report_header(config):
    """Say up front which real services the suite will use, and what it will skip."""
    lines = []
    lines.append(f"PostgreSQL: {TEST_DATABASE_URL or 'not set (TEST_DATABASE_URL) - postgres tests skipped'}")
    lines.append(f"Redis: {TEST_REDIS_URL or 'not set (TEST_REDIS_URL) - real-Redis tests skipped'}")
    return lines


def db(app):
    """A session on the app's database, committed when the block ends."""
    return app.extensions["yinling"].db.session()


def oid(tag: str = "u") -> str:
    """A fresh openid, tagged for reading test failures."""
    return f"o-{tag}-{uuid.uuid4().hex[:12]}"


def sent(app, openid: str) -> list[str]:
    """Every message queued for openid (whatever its delivery status), oldest first."""
    from models import Delivery

    with db(app) as s:
        return list(s.scalars(select(Delivery.body).where(Delivery.openid == openid)
                              .order_by(Delivery.id)))


def reset_schema(url: str) -> None:
    """Drop and recreate every table (tests own the test database)."""
    engine = create_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    models.Base.metadata.create_all(engine)
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path):
    """(database url, redis client) for one backend pair."""
    if request.param == "postgres":
        if not (TEST_DATABASE_URL and TEST_REDIS_URL):
            pytest.skip("PostgreSQL/Redis backend: set TEST_DATABASE_URL and TEST_REDIS_URL")
        client = redis_lib.Redis.from_url(TEST_REDIS_URL)
        client.flushdb()
        reset_schema(TEST_DATABASE_URL)
        yield TEST_DATABASE_URL, client
        client.flushdb()
        return
    url = f"sqlite:///{tmp_path / 'test.db'}"
    reset_schema(url)
    yield url, fakeredis.FakeRedis(server=fakeredis.FakeServer())


@pytest.fixture
def make_app(backend, tmp_path):
    """Factory for apps sharing this test's database and Redis (several = several workers)."""
    url, redis_client = backend
    apps = []

    def factory(**overrides):
        # Quiet hours depend on the wall clock: off unless a test sets them. The API base is a
        # closed loopback port, so no test can ever reach the real WeChat by accident.
        settings = {"database_url": url, "env": "test", "reply_budget_seconds": 4.0,
                    "spool_dir": str(tmp_path / "spool"),
                    "quiet_hours": "off", "wechat_api_base": "http://127.0.0.1:9/"}
        client = overrides.pop("redis_client", redis_client)
        settings.update(overrides)
        app = create_app(settings, redis_client=client)
        app.config["TESTING"] = True
        apps.append(app)
        return app

    yield factory
    for app in apps:
        yl = app.extensions["yinling"]
        yl.dispatcher.shutdown()
        yl.db.dispose()


@pytest.fixture
def app(make_app):
    """The app on this backend."""
    return make_app()


@pytest.fixture
def client(app):
    """Flask test client."""
    return app.test_client()


@pytest.fixture
def wx(app):
    """A WeChat server stand-in that signs messages and posts them to the real webhook."""
    return WeChat(app)


@pytest.fixture
def openid():
    """A fresh openid per test."""
    return f"o-{uuid.uuid4().hex[:20]}"


@pytest.fixture
def echo_app(make_app):
    """The app with the test-only echo handlers registered."""
    from tests import echo

    app = make_app()
    echo.install(app)
    echo.calls.clear()
    return app


@pytest.fixture
def ewx(echo_app):
    """WeChat driver for the echo app."""
    return WeChat(echo_app)


@pytest.fixture
def cut_redis():
    """`cut_redis(app)`: every Redis user of the app now talks to a server that is not there."""
    def cut(app):
        dead = redis_lib.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2,
                               socket_timeout=0.2)
        yl = app.extensions["yinling"]
        yl.inbox.redis = dead
        return app
    return cut
