"""index host_results.run_id: a run's writes and its end look up its rows by it

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 06:00:00
"""
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('host_results', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_host_results_run_id'), ['run_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('host_results', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_host_results_run_id'))
