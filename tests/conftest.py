"""Fixtures: an app per backend (SQLite + stand-in always; PostgreSQL + Redis when configured)."""
from __future__ import annotations

import os
import re
import time
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
PASSWORD = "correct-horse-9"   # every console test's staff password


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


def bound_user(app, name: str = "王建国", phone: str = "13800001001") -> str:
    """A fresh openid bound to a new cadre, as the cadre himself."""
    from models import Binding, Cadre

    openid = oid("cadre")
    with db(app) as s:
        cadre = Cadre(name=name, phone=phone)
        s.add(cadre)
        s.flush()
        s.add(Binding(openid=openid, cadre_id=cadre.id, relation="self"))
    return openid


def console_staff(app, name: str = "赵敏") -> str:
    """A staff member on duty in chat who can also log in to the console; their openid."""
    from bot.console.auth import set_password
    from models import Staff

    openid = oid("staff")
    with db(app) as s:
        s.add(Staff(name=name, openid=openid, on_duty=True))
        s.flush()
        set_password(s, name, PASSWORD)
    return openid


def inbound(app, openid: str) -> list:
    """The inbound rows recorded for openid, oldest first (readable after the session)."""
    from models import InboundMessage

    with db(app) as s:
        rows = list(s.scalars(select(InboundMessage).where(InboundMessage.openid == openid)
                              .order_by(InboundMessage.id)))
        s.expunge_all()
    return rows


def roles_of(app, openid: str):
    """The roles the router gives openid now."""
    with db(app) as s:
        return app.extensions["yinling"].router.roles_of(s, openid)


def wait_for(predicate, seconds: float = 10.0, every: float = 0.05):
    """Poll predicate until it returns something true or `seconds` pass; its last value.
    Instead of a fixed sleep: as fast as the condition allows, as patient as a slow machine
    needs."""
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(every)


def drain(app) -> None:
    """One sweep now, then the app's in-process dispatcher finishes everything it was handed
    (it starts again on the next push): a delivery not sent by then is held, not slow."""
    dispatcher = app.extensions["yinling"].dispatcher
    sweeper = getattr(dispatcher, "sweeper", None)   # the RQ dispatcher sweeps in workers
    if sweeper is not None:
        sweeper.run_once()
    dispatcher.shutdown()


# ---- the staff console --------------------------------------------------------------------
def token_of(html: str) -> str:
    """The CSRF token in a page's form."""
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def login(client, name: str = "李房管", password: str = PASSWORD, *, headers=None,
          environ_base=None, **extra):
    """Open the login page (for its CSRF token) and post the form (from `environ_base`'s
    address, through `headers`' proxy); the response."""
    where = {"headers": headers or {}, "environ_base": environ_base or {}}
    token = token_of(client.get("/console/login", **where).get_data(as_text=True))
    return client.post("/console/login", data={"name": name, "password": password,
                                               "csrf_token": token, **extra}, **where)


def logged_in(client, name: str = "李房管"):
    """Log in through the form, insisting that it works; the client."""
    response = login(client, name)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def page(client, path: str) -> str:
    """GET a console page that must answer 200, as text."""
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code, response.location)
    return response.get_data(as_text=True)


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
                    "spool_dir": str(tmp_path / "spool"), "media_dir": str(tmp_path / "media"),
                    "quiet_hours": "off", "wechat_api_base": "http://127.0.0.1:9/"}
        client = overrides.pop("redis_client", redis_client)
        settings.update(overrides)
        app = create_app(settings, redis_client=client)
        app.config["TESTING"] = True
        apps.append(app)
        return app

    yield factory
    for app in apps:   # no thread of theirs may outlive the test (it would sweep the next one's)
        app.extensions["yinling"].close()


@pytest.fixture
def app(make_app):
    """The app on this backend."""
    return make_app()


@pytest.fixture
def night_app(make_app):
    """The app with the default quiet hours (the test settings turn them off)."""
    return make_app(quiet_hours="21:00-08:00")


@pytest.fixture
def fake():
    """The fake WeChat API on loopback."""
    from tests.fake_wechat import FakeWeChat

    with FakeWeChat() as api:
        yield api


@pytest.fixture
def live(make_app, fake):
    """An app that sends to the fake API (thread dispatcher, as without REDIS_URL)."""
    from tests.fake_wechat import live_settings

    return make_app(**live_settings(fake))


@pytest.fixture
def database(tmp_path):
    """A database URL for several processes: PostgreSQL when configured, else a SQLite file."""
    url = TEST_DATABASE_URL or f"sqlite:///{tmp_path / 'shared.db'}"
    reset_schema(url)
    return url


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
