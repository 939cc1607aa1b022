"""background requests hold a lease while they run, and record what a running attempt leaves

A worker renews ``lease_expires`` while it runs a request; a request whose lease lapsed (its worker
was killed) is queued again. ``leftovers`` names what the running attempt made (media, scratch
files, partial exports), so that a retry or the end of the request removes it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import annota.core.db.types


revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('requests') as batch:
        batch.add_column(
            sa.Column('lease_expires', annota.core.db.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column('leftovers', sa.Text(), nullable=False, server_default='[]'))


def downgrade() -> None:
    with op.batch_alter_table('requests') as batch:
        batch.drop_column('leftovers')
        batch.drop_column('lease_expires')
