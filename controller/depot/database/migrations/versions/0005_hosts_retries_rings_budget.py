"""hosts, retries, rings, failure budget, target windows

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 01:23:20.318916
"""
from alembic import op
import sqlalchemy as sa

from depot.database.core import UTCDateTime


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('hosts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('last_checkin_at', UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_address', sa.String(length=64), nullable=True),
    sa.Column('checkins', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hosts')),
    sa.UniqueConstraint('name', name=op.f('uq_hosts_name'))
    )
    with op.batch_alter_table('deployments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failure_budget_percent', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('failure_budget_min_sample', sa.Integer(), nullable=False, server_default='5'))
        batch_op.add_column(sa.Column('budget_acknowledged', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('pause_reason', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('rings', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('schedule_rerun', sa.String(length=20), nullable=True))

    with op.batch_alter_table('host_results', schema=None) as batch_op:
        batch_op.add_column(sa.Column('targets', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('ring', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('address', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('mac', sa.String(length=17), nullable=True))
        batch_op.add_column(sa.Column('retries_done', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('boot_id', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('wait_boot_id', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('woken_at', UTCDateTime(timezone=True), nullable=True))

    with op.batch_alter_table('maintenance_windows', schema=None) as batch_op:
        batch_op.add_column(sa.Column('target_id', sa.Integer(), nullable=True))
        batch_op.alter_column('deployment_id',
               existing_type=sa.INTEGER(),
               nullable=True)
        batch_op.create_index(batch_op.f('ix_maintenance_windows_target_id'), ['target_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_maintenance_windows_target_id_targets'), 'targets', ['target_id'], ['id'], ondelete='CASCADE')

    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('options', sa.JSON(), nullable=False, server_default='{}'))

    with op.batch_alter_table('steps', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retry_count', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('retry_interval', sa.Integer(), nullable=False, server_default='600'))
        batch_op.add_column(sa.Column('retry_after_reboot', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('network_condition', sa.String(length=20), nullable=False, server_default='any'))
        batch_op.add_column(sa.Column('wake_on_lan', sa.JSON(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('steps', schema=None) as batch_op:
        batch_op.drop_column('wake_on_lan')
        batch_op.drop_column('network_condition')
        batch_op.drop_column('retry_after_reboot')
        batch_op.drop_column('retry_interval')
        batch_op.drop_column('retry_count')

    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('options')

    with op.batch_alter_table('maintenance_windows', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_maintenance_windows_target_id_targets'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_maintenance_windows_target_id'))
        batch_op.alter_column('deployment_id',
               existing_type=sa.INTEGER(),
               nullable=False)
        batch_op.drop_column('target_id')

    with op.batch_alter_table('host_results', schema=None) as batch_op:
        batch_op.drop_column('woken_at')
        batch_op.drop_column('wait_boot_id')
        batch_op.drop_column('boot_id')
        batch_op.drop_column('retries_done')
        batch_op.drop_column('mac')
        batch_op.drop_column('address')
        batch_op.drop_column('ring')
        batch_op.drop_column('targets')

    with op.batch_alter_table('deployments', schema=None) as batch_op:
        batch_op.drop_column('schedule_rerun')
        batch_op.drop_column('rings')
        batch_op.drop_column('pause_reason')
        batch_op.drop_column('budget_acknowledged')
        batch_op.drop_column('failure_budget_min_sample')
        batch_op.drop_column('failure_budget_percent')

    op.drop_table('hosts')
