"""personal binding QR codes

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bind_code',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token', sa.String(length=32), nullable=False),
    sa.Column('cadre_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.Column('used_by', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['cadre_id'], ['cadre.id'], name=op.f('fk_bind_code_cadre_id_cadre')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bind_code')),
    sa.UniqueConstraint('token', name=op.f('uq_bind_code_token'))
    )
    op.create_index(op.f('ix_bind_code_cadre_id'), 'bind_code', ['cadre_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_bind_code_cadre_id'), table_name='bind_code')
    op.drop_table('bind_code')
