"""cloud storages, and the cloud storage a task's media stay in

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import annota.core.db.types


revision: str = '0012'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('cloud_storages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider_type', sa.String(length=32), nullable=False),
    sa.Column('resource', sa.String(length=222), nullable=False),
    sa.Column('display_name', sa.String(length=63), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('credentials_type', sa.String(length=32), nullable=False),
    sa.Column('credentials', sa.Text(), nullable=False),
    sa.Column('specific_attributes', sa.String(length=1024), nullable=False),
    sa.Column('manifests', sa.Text(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.Column('organization_id', sa.Integer(), nullable=True),
    sa.Column('created_date', annota.core.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_date', annota.core.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_cloud_storages_organization_id_organizations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_cloud_storages_owner_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cloud_storages'))
    )  # fmt: skip
    op.create_index(op.f('ix_cloud_storages_organization_id'), 'cloud_storages', ['organization_id'], unique=False)
    op.create_index(op.f('ix_cloud_storages_owner_id'), 'cloud_storages', ['owner_id'], unique=False)
    op.add_column('data', sa.Column('cloud_storage_id', sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column('data', 'cloud_storage_id')
    op.drop_index(op.f('ix_cloud_storages_owner_id'), table_name='cloud_storages')
    op.drop_index(op.f('ix_cloud_storages_organization_id'), table_name='cloud_storages')
    op.drop_table('cloud_storages')
