"""Alembic environment: metadata from models, URL from the Config the app passes."""
from alembic import context
from sqlalchemy import create_engine, pool

import models
from models.base import UTCDateTime

config = context.config
target_metadata = models.Base.metadata


def render_item(type_, obj, autogen_context):
    """Render the UTC column type as plain DateTime so migrations do not import models."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime()"
    return False


def include_object(obj, name, type_, reflected, compare_to):
    """`-x tables=a,b` limits autogenerate to those tables (a feature's own migration)."""
    only = context.get_x_argument(as_dictionary=True).get("tables")
    if not only:
        return True
    table = obj if type_ == "table" else getattr(obj, "table", None)
    return table is not None and table.name in only.split(",")


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"),
                      target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=True, render_item=render_item)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=True, render_item=render_item,
                          include_object=include_object)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
