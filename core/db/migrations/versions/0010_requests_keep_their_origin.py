"""background requests keep the id of the HTTP request that started them

``origin_request_id`` holds the ``X-Request-ID`` of the request that created the row; the worker
running the job binds it again, so that the job's log lines carry the same id as the request's.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('requests') as batch:
        batch.add_column(sa.Column('origin_request_id', sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('requests') as batch:
        batch.drop_column('origin_request_id')
