"""projects and tasks point at storage rows

A project's or task's ``source_storage`` / ``target_storage`` were JSON text without an id; CVAT's
clients require the id of the storage row, so each setting becomes a row of ``storages`` and the
projects and tasks keep its id. Columns are added and dropped in place (SQLite >= 3.35): rebuilding
``projects`` or ``tasks`` would cascade to every row that points at them, which is also why the ids
are plain columns rather than foreign keys.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OWNERS = ('projects', 'tasks')
KINDS = ('source_storage', 'target_storage')


def upgrade() -> None:
    op.create_table('storages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('location', sa.String(length=16), nullable=False),
    sa.Column('cloud_storage_id', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_storages'))
    )  # fmt: skip
    bind = op.get_bind()
    for table in OWNERS:
        for kind in KINDS:
            op.add_column(table, sa.Column(f'{kind}_id', sa.Integer(), nullable=True))
            rows = bind.execute(sa.text(f'SELECT id, {kind} FROM {table} WHERE {kind} IS NOT NULL')).all()
            for owner_id, raw in rows:
                value = json.loads(raw)
                storage_id = bind.execute(
                    sa.text('INSERT INTO storages (location, cloud_storage_id) VALUES (:l, :c) RETURNING id'),
                    {'l': value.get('location') or 'local', 'c': value.get('cloud_storage_id')},
                ).scalar_one()
                bind.execute(
                    sa.text(f'UPDATE {table} SET {kind}_id = :s WHERE id = :i'), {'s': storage_id, 'i': owner_id}
                )
            op.drop_column(table, kind)


def downgrade() -> None:
    bind = op.get_bind()
    for table in OWNERS:
        for kind in KINDS:
            op.add_column(table, sa.Column(kind, sa.Text(), nullable=True))
            rows = bind.execute(sa.text(
                f'SELECT {table}.id, storages.location, storages.cloud_storage_id FROM {table} '
                f'JOIN storages ON storages.id = {table}.{kind}_id'
            )).all()  # fmt: skip
            for owner_id, location, cloud_storage_id in rows:
                value = json.dumps({'location': location, 'cloud_storage_id': cloud_storage_id})
                bind.execute(sa.text(f'UPDATE {table} SET {kind} = :v WHERE id = :i'), {'v': value, 'i': owner_id})
            op.drop_column(table, f'{kind}_id')
    op.drop_table('storages')
