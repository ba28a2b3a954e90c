"""index host_results (deployment_id, position, host, status): a report page from the index alone

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22 08:30:00
"""
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('host_results', schema=None) as batch_op:
        batch_op.create_index('ix_host_results_report', ['deployment_id', 'position', 'host', 'status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('host_results', schema=None) as batch_op:
        batch_op.drop_index('ix_host_results_report')
