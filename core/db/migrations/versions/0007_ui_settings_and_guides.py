"""quality and consensus settings, annotation guides and assets

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import annota.core.db.types


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('annotation_guides',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=True),
    sa.Column('project_id', sa.Integer(), nullable=True),
    sa.Column('markdown', sa.Text(), nullable=False),
    sa.Column('created_date', annota.core.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_date', annota.core.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('(task_id IS NULL) <> (project_id IS NULL)', name=op.f('ck_annotation_guides_task_or_project')),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_annotation_guides_project_id_projects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_annotation_guides_task_id_tasks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_annotation_guides')),
    sa.UniqueConstraint('project_id', name=op.f('uq_annotation_guides_project_id')),
    sa.UniqueConstraint('task_id', name=op.f('uq_annotation_guides_task_id')),
    sqlite_autoincrement=True
    )
    op.create_table('consensus_settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('iou_threshold', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_consensus_settings_task_id_tasks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consensus_settings')),
    sa.UniqueConstraint('task_id', name=op.f('uq_consensus_settings_task_id')),
    sqlite_autoincrement=True
    )
    op.create_table('quality_settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=True),
    sa.Column('project_id', sa.Integer(), nullable=True),
    sa.Column('inherit', sa.Boolean(), nullable=False),
    sa.Column('job_filter', sa.String(length=1024), nullable=False),
    sa.Column('target_metric', sa.String(length=32), nullable=False),
    sa.Column('target_metric_threshold', sa.Float(), nullable=False),
    sa.Column('max_validations_per_job', sa.Integer(), nullable=False),
    sa.Column('iou_threshold', sa.Float(), nullable=False),
    sa.Column('oks_sigma', sa.Float(), nullable=False),
    sa.Column('point_size_base', sa.String(length=32), nullable=False),
    sa.Column('line_thickness', sa.Float(), nullable=False),
    sa.Column('low_overlap_threshold', sa.Float(), nullable=False),
    sa.Column('compare_line_orientation', sa.Boolean(), nullable=False),
    sa.Column('line_orientation_threshold', sa.Float(), nullable=False),
    sa.Column('compare_groups', sa.Boolean(), nullable=False),
    sa.Column('group_match_threshold', sa.Float(), nullable=False),
    sa.Column('check_covered_annotations', sa.Boolean(), nullable=False),
    sa.Column('object_visibility_threshold', sa.Float(), nullable=False),
    sa.Column('panoptic_comparison', sa.Boolean(), nullable=False),
    sa.Column('compare_attributes', sa.Boolean(), nullable=False),
    sa.Column('empty_is_annotated', sa.Boolean(), nullable=False),
    sa.Column('created_date', annota.core.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_date', annota.core.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('(task_id IS NULL) <> (project_id IS NULL)', name=op.f('ck_quality_settings_task_or_project')),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_quality_settings_project_id_projects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_quality_settings_task_id_tasks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quality_settings')),
    sa.UniqueConstraint('project_id', name=op.f('uq_quality_settings_project_id')),
    sa.UniqueConstraint('task_id', name=op.f('uq_quality_settings_task_id')),
    sqlite_autoincrement=True
    )
    op.create_table('assets',
    sa.Column('uuid', sa.String(length=36), nullable=False),
    sa.Column('filename', sa.String(length=1024), nullable=False),
    sa.Column('content_type', sa.String(length=128), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.Column('guide_id', sa.Integer(), nullable=False),
    sa.Column('created_date', annota.core.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['guide_id'], ['annotation_guides.id'], name=op.f('fk_assets_guide_id_annotation_guides'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_assets_owner_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('uuid', name=op.f('pk_assets'))
    )
    with op.batch_alter_table('assets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_assets_guide_id'), ['guide_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_assets_owner_id'), ['owner_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('assets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_assets_owner_id'))
        batch_op.drop_index(batch_op.f('ix_assets_guide_id'))

    op.drop_table('assets')
    op.drop_table('quality_settings')
    op.drop_table('consensus_settings')
    op.drop_table('annotation_guides')
