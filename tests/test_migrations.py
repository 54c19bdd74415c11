"""Alembic migrations build exactly the schema the models describe."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

import models
from bot.migrate import upgrade


def test_upgrade_to_head_matches_the_models(backend):
    url, _ = backend
    engine = create_engine(url)
    with engine.begin() as conn:  # start from nothing: the fixture made tables with create_all
        models.Base.metadata.drop_all(conn)
        if conn.dialect.has_table(conn, "alembic_version"):
            conn.execute(text("DROP TABLE alembic_version"))
    upgrade(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), models.Base.metadata)
    engine.dispose()
    assert diff == [], diff


def test_db_upgrade_command(app):
    url = app.extensions["yinling"].settings.database_url
    engine = create_engine(url)
    with engine.begin() as conn:
        models.Base.metadata.drop_all(conn)
    engine.dispose()
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0 and "database at head" in result.output
