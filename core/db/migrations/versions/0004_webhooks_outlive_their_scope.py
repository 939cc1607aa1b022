"""webhooks outlive their project or organization

Deleting a project or organization records its ``delete:*`` event in the deleting transaction; with
cascading foreign keys its webhooks were gone before the event could be fanned out to them. The
webhooks plugin now hides such orphans and prunes them itself, once their deliveries are made.

On SQLite batch mode rebuilds ``webhooks`` (copy, drop, rename). With foreign keys enforced, the
drop cascades to every delivery and queued job, and the copy forgets the id sequence: both are put
back afterwards.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from collections.abc import Callable, Sequence
from typing import Any

from alembic import op


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCOPE_KEYS = (
    ('fk_webhooks_project_id_projects', 'projects', 'project_id'),
    ('fk_webhooks_organization_id_organizations', 'organizations', 'organization_id'),
)
#: the tables whose rows point at webhooks (ON DELETE CASCADE)
CHILDREN = ('webhook_deliveries', 'webhook_jobs')
ORPHANS = (
    'DELETE FROM webhooks WHERE '
    '(project_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM projects WHERE projects.id = webhooks.project_id)) '
    'OR (organization_id IS NOT NULL AND NOT EXISTS '
    '(SELECT 1 FROM organizations WHERE organizations.id = webhooks.organization_id))'
)


def _alter_webhooks(alter: Callable[[Any], None]) -> None:
    """Run ``alter`` on a batch of ``webhooks``, keeping on SQLite the rows that point at webhooks
    and the id sequence (ids of deleted webhooks are never handed out again)."""
    sqlite = op.get_bind().dialect.name == 'sqlite'
    if sqlite:
        for child in CHILDREN:
            op.execute(f'CREATE TEMP TABLE _kept_{child} AS SELECT * FROM {child}')
        op.execute("CREATE TEMP TABLE _kept_sequence AS SELECT seq FROM sqlite_sequence WHERE name = 'webhooks'")
    with op.batch_alter_table('webhooks', schema=None, table_kwargs={'sqlite_autoincrement': True}) as batch_op:
        alter(batch_op)
    if sqlite:
        for child in CHILDREN:
            op.execute(f'INSERT INTO {child} SELECT * FROM _kept_{child}')
            op.execute(f'DROP TABLE _kept_{child}')
        op.execute("DELETE FROM sqlite_sequence WHERE name = 'webhooks'")
        op.execute("INSERT INTO sqlite_sequence (name, seq) SELECT 'webhooks', seq FROM _kept_sequence")
        op.execute('DROP TABLE _kept_sequence')


def upgrade() -> None:
    def drop_scope_keys(batch_op: Any) -> None:
        for name, _, _ in SCOPE_KEYS:
            batch_op.drop_constraint(batch_op.f(name), type_='foreignkey')

    _alter_webhooks(drop_scope_keys)


def downgrade() -> None:
    # the foreign keys cannot come back while a webhook points at a deleted project or organization
    op.execute(ORPHANS)

    def create_scope_keys(batch_op: Any) -> None:
        for name, table, column in SCOPE_KEYS:
            batch_op.create_foreign_key(batch_op.f(name), table, [column], ['id'], ondelete='CASCADE')

    _alter_webhooks(create_scope_keys)
