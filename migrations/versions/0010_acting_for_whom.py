"""acting for whom: the cadre chosen by someone bound to several

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('follower') as batch:
        batch.add_column(sa.Column('acting_cadre_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('acting_until', sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('follower') as batch:
        batch.drop_column('acting_until')
        batch.drop_column('acting_cadre_id')
