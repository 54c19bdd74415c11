"""a cadre marked deceased

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('cadre') as batch:
        batch.add_column(sa.Column('deceased_on', sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('cadre') as batch:
        batch.drop_column('deceased_on')
