"""a user may hold several login tokens

Signing in from a second client (cvat-cli beside the web UI or a script) no longer withdraws the
first client's token, so ``auth_tokens.user_id`` is no longer unique, only indexed.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op


revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('auth_tokens') as batch:
        batch.drop_constraint('uq_auth_tokens_user_id', type_='unique')
        batch.create_index('ix_auth_tokens_user_id', ['user_id'])


def downgrade() -> None:
    # one token per user again: the tokens are credentials of the moment, clients sign in anew
    op.execute('DELETE FROM auth_tokens')
    with op.batch_alter_table('auth_tokens') as batch:
        batch.drop_index('ix_auth_tokens_user_id')
        batch.create_unique_constraint('uq_auth_tokens_user_id', ['user_id'])
