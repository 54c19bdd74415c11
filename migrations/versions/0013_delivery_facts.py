"""the kind and named facts of each delivery

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01

A template message shows a few typed fields of at most 20 characters and no first/remark
(WeChat, since May 2023): each delivery keeps its kind of push and the facts its fields show
(config/templates.yaml), not only the whole text. Rows made before have neither and go out with
the generic what/when notice.
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('delivery') as batch:
        batch.add_column(sa.Column('push_kind', sa.String(length=32), nullable=True))
        batch.add_column(sa.Column('facts', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('delivery') as batch:
        batch.drop_column('facts')
        batch.drop_column('push_kind')
