"""The relational schema of CVAT's domain model (DESIGN.md §4).

Annotations are stored row-per-object with compact columns: ``points`` and ``attributes`` hold
JSON text encoded by the services (no per-attribute tables), so that saves and loads move whole
rows with bulk statements.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from annota.core.db.types import BigId, UTCDateTime, utcnow

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _created() -> Mapped[dt.datetime]:
    return mapped_column(UTCDateTime, default=utcnow, nullable=False)


def _updated() -> Mapped[dt.datetime]:
    return mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False)


def _user_fk(nullable: bool = True) -> Mapped[int | None]:
    return mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=nullable, index=True)


# --- identity -------------------------------------------------------------------------------


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(150), unique=True, nullable=False)
    email: Mapped[str] = mapped_column(String(254), nullable=False, default="", index=True)
    first_name: Mapped[str] = mapped_column(String(150), nullable=False, default="")
    last_name: Mapped[str] = mapped_column(String(150), nullable=False, default="")
    password_hash: Mapped[str] = mapped_column(String(256), nullable=False, default="")
    #: global privilege: "admin", "user", "worker" or None (CVAT's IAM groups)
    privilege: Mapped[str | None] = mapped_column(String(16), nullable=True, default="user")
    is_superuser: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    is_staff: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    date_joined: Mapped[dt.datetime] = _created()
    last_login: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AuthToken(Base):
    """The legacy ``Authorization: Token <key>`` key returned by login; one per login, the newest
    few of a user kept (``users.MAX_LOGIN_TOKENS``)."""

    __tablename__ = "auth_tokens"
    key_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created: Mapped[dt.datetime] = _created()


class Session(Base):
    """A cookie session; ``sessionid`` is stored only as a digest."""

    __tablename__ = "sessions"
    key_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created: Mapped[dt.datetime] = _created()
    expires: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, index=True)


class AccessToken(Base):
    """A personal access token (``Authorization: Bearer``); the secret is stored as a digest."""

    __tablename__ = "access_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(256), nullable=False, default="")
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    read_only: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_date: Mapped[dt.datetime] = _created()
    updated_date: Mapped[dt.datetime] = _updated()
    expiry_date: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_used_date: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Organization(Base):
    __tablename__ = "organizations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(16), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    contact: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    owner_id: Mapped[int | None] = _user_fk()
    created_date: Mapped[dt.datetime] = _created()
    updated_date: Mapped[dt.datetime] = _updated()


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "organization_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    #: "owner", "maintainer", "supervisor" or "worker"
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    joined_date: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Invitation(Base):
    __tablename__ = "invitations"
    key_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id", ondelete="CASCADE"))
    owner_id: Mapped[int | None] = _user_fk()
    created_date: Mapped[dt.datetime] = _created()
    sent_date: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    expires: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)


# --- projects, tasks, media -----------------------------------------------------------------


class Storage(Base):
    """Where a project's or task's imports come from or exports go (CVAT's ``Storage``); each
    project and task owns its rows, so that clients see the ids CVAT gives them."""

    __tablename__ = "storages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: "local" or "cloud_storage"
    location: Mapped[str] = mapped_column(String(16), nullable=False, default="local")
    cloud_storage_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


def _storage_fk() -> Mapped[int | None]:
    # no foreign key: SQLite could not drop or add such a column in place, and the services delete
    # a storage row with its project or task
    return mapped_column(Integer, nullable=True)


class CloudStorage(Base):
    """A bucket or container users create tasks from and export to (CVAT's ``CloudStorage``)."""

    __tablename__ = "cloud_storages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider_type: Mapped[str] = mapped_column(String(32), nullable=False)
    resource: Mapped[str] = mapped_column(String(222), nullable=False)
    display_name: Mapped[str] = mapped_column(String(63), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    credentials_type: Mapped[str] = mapped_column(String(32), nullable=False)
    #: the credentials, encrypted with a key derived from the server's secret key; never returned
    credentials: Mapped[str] = mapped_column(Text, nullable=False, default="")
    #: CVAT's ``k=v&k=v`` provider attributes (region, endpoint_url, prefix …)
    specific_attributes: Mapped[str] = mapped_column(String(1024), nullable=False, default="")
    #: JSON list of manifest file names inside the bucket
    manifests: Mapped[str] = mapped_column(Text, nullable=False, default="[]")
    owner_id: Mapped[int | None] = _user_fk()
    organization_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), nullable=True, index=True
    )
    created_date: Mapped[dt.datetime] = _created()
    updated_date: Mapped[dt.datetime] = _updated()


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(256), nullable=False)
    owner_id: Mapped[int | None] = _user_fk()
    assignee_id: Mapped[int | None] = _user_fk()
    assignee_updated_date: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    bug_tracker: Mapped[str] = mapped_column(String(2000), nullable=False, default="")
    status: Mapped[str] = mapped_column(String(32), nullable=False, default="annotation")
    organization_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), nullable=True, index=True
    )
    source_storage_id: Mapped[int | None] = _storage_fk()
    target_storage_id: Mapped[int | None] = _storage_fk()
    created_date: Mapped[dt.datetime] = _created()
    updated_date: Mapped[dt.datetime] = _updated()


class Data(Base):
    """The media of one task (CVAT's ``Data``)."""

    __tablename__ = "data"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    image_quality: Mapped[int] = mapped_column(Integer, nullable=False, default=70)
    start_frame: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    stop_frame: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    frame_filter: Mapped[str] = mapped_column(String(256), nullable=False, default="")
    chunk_size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    compressed_chunk_type: Mapped[str] = mapped_column(String(32), nullable=False, default="imageset")
    original_chunk_type: Mapped[str] = mapped_column(String(32), nullable=False, default="imageset")
    storage_method: Mapped[str] = mapped_column(String(16), nullable=False, default="file_system")
    storage: Mapped[str] = mapped_column(String(16), nullable=False, default="local")
    sorting_method: Mapped[str] = mapped_column(String(16), nullable=False, default="lexicographical")
    #: JSON list of relative frame numbers
    deleted_frames: Mapped[str] = mapped_column(Text, nullable=False, default="[]")
    content_size: Mapped[int | None] = mapped_column(BigId, nullable=True)
    #: the cloud storage the media stay in (``storage == "cloud_storage"``); no foreign key, so
    #: that deleting the cloud storage leaves the task, whose media then cannot be read
    cloud_storage_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: "images" or "video" once media is attached
    media_kind: Mapped[str] = mapped_column(String(16), nullable=False, default="")
    chunks_updated_date: Mapped[dt.datetime] = _created()
    created_date: Mapped[dt.datetime] = _created()


class Frame(Base):
    """Metadata of one frame: CVAT's ``Image`` rows (one per frame, for video too)."""

    __tablename__ = "frames"
    __table_args__ = (UniqueConstraint("data_id", "frame"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    data_id: Mapped[int] = mapped_column(ForeignKey("data.id", ondelete="CASCADE"), nullable=False)
    frame: Mapped[int] = mapped_column(Integer, nullable=False)
    path: Mapped[str] = mapped_column(String(1024), nullable=False)
    width: Mapped[int] = mapped_column(Integer, nullable=False)
    height: Mapped[int] = mapped_column(Integer, nullable=False)
    is_placeholder: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    real_frame: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    #: JSON list of the frame's context image names (CVAT's related files)
    related_files: Mapped[str] = mapped_column(Text, nullable=False, default="[]", server_default="[]")


class Task(Base):
    __tablename__ = "tasks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=True, index=True
    )
    name: Mapped[str] = mapped_column(String(256), nullable=False)
    owner_id: Mapped[int | None] = _user_fk()
    assignee_id: Mapped[int | None] = _user_fk()
    assignee_updated_date: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    bug_tracker: Mapped[str] = mapped_column(String(2000), nullable=False, default="")
    status: Mapped[str] = mapped_column(String(32), nullable=False, default="annotation")
    overlap: Mapped[int | None] = mapped_column(Integer, nullable=True)
    segment_size: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    data_id: Mapped[int | None] = mapped_column(ForeignKey("data.id", ondelete="SET NULL"), nullable=True)
    dimension: Mapped[str] = mapped_column(String(2), nullable=False, default="2d")
    mode: Mapped[str] = mapped_column(String(32), nullable=False, default="")
    media_type: Mapped[str] = mapped_column(String(16), nullable=False, default="")
    subset: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    organization_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), nullable=True, index=True
    )
    source_storage_id: Mapped[int | None] = _storage_fk()
    target_storage_id: Mapped[int | None] = _storage_fk()
    consensus_replicas: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_date: Mapped[dt.datetime] = _created()
    updated_date: Mapped[dt.datetime] = _updated()


class Segment(Base):
    __tablename__ = "segments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    start_frame: Mapped[int] = mapped_column(Integer, nullable=False)
    stop_frame: Mapped[int] = mapped_column(Integer, nullable=False)
    #: "range" or "specific_frames"
    type: Mapped[str] = mapped_column(String(32), nullable=False, default="range")
    #: JSON list of relative frames for "specific_frames" segments
    frames: Mapped[str] = mapped_column(Text, nullable=False, default="[]")
    chunks_updated_date: Mapped[dt.datetime] = _created()


class Job(Base):
    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"), index=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    assignee_id: Mapped[int | None] = _user_fk()
    assignee_updated_date: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    status: Mapped[str] = mapped_column(String(32), nullable=False, default="annotation")
    stage: Mapped[str] = mapped_column(String(32), nullable=False, default="annotation")
    state: Mapped[str] = mapped_column(String(32), nullable=False, default="new")
    type: Mapped[str] = mapped_column(String(32), nullable=False, default="annotation")
    parent_job_id: Mapped[int | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), nullable=True
    )
    #: bumped on every annotation save: optimistic concurrency for writers
    annotations_version: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_date: Mapped[dt.datetime] = _created()
    updated_date: Mapped[dt.datetime] = _updated()


# --- labels ---------------------------------------------------------------------------------


class Label(Base):
    __tablename__ = "labels"
    __table_args__ = (
        Index("ix_labels_task_parent_name", "task_id", "parent_id", "name"),
        Index("ix_labels_project_parent_name", "project_id", "parent_id", "name"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), nullable=True)
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=True
    )
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("labels.id", ondelete="CASCADE"), nullable=True, index=True
    )
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    color: Mapped[str] = mapped_column(String(8), nullable=False, default="")
    type: Mapped[str] = mapped_column(String(32), nullable=False, default="any")
    #: skeleton drawing (only on skeleton labels)
    svg: Mapped[str] = mapped_column(Text, nullable=False, default="")


class AttributeSpec(Base):
    __tablename__ = "attribute_specs"
    __table_args__ = (UniqueConstraint("label_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    label_id: Mapped[int] = mapped_column(ForeignKey("labels.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    mutable: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    input_type: Mapped[str] = mapped_column(String(16), nullable=False)
    default_value: Mapped[str] = mapped_column(String(128), nullable=False, default="")
    #: JSON list of strings
    values: Mapped[str] = mapped_column(Text, nullable=False, default="[]")


# --- annotations (hot path: bulk statements only) -------------------------------------------


class Tag(Base):
    __tablename__ = "tags"
    __table_args__ = (Index("ix_tags_job_frame", "job_id", "frame"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False)
    label_id: Mapped[int] = mapped_column(ForeignKey("labels.id", ondelete="CASCADE"), nullable=False)
    frame: Mapped[int] = mapped_column(Integer, nullable=False)
    group: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    source: Mapped[str] = mapped_column(String(16), nullable=False, default="manual")
    #: JSON in wire form, ``[{"spec_id": 1, "value": "x"}, ...]``, spliced into answers as stored
    attributes: Mapped[str] = mapped_column(Text, nullable=False, default="[]")


class Shape(Base):
    __tablename__ = "shapes"
    __table_args__ = (Index("ix_shapes_job_frame", "job_id", "frame"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False)
    label_id: Mapped[int] = mapped_column(ForeignKey("labels.id", ondelete="CASCADE"), nullable=False)
    #: skeleton element shapes point at their skeleton
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("shapes.id", ondelete="CASCADE"), nullable=True, index=True
    )
    frame: Mapped[int] = mapped_column(Integer, nullable=False)
    type: Mapped[str] = mapped_column(String(16), nullable=False)
    group: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    source: Mapped[str] = mapped_column(String(16), nullable=False, default="manual")
    score: Mapped[float] = mapped_column(Float, nullable=False, default=1.0)
    occluded: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    outside: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    z_order: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    rotation: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    #: JSON array of floats
    points: Mapped[str] = mapped_column(Text, nullable=False, default="[]")
    attributes: Mapped[str] = mapped_column(Text, nullable=False, default="[]")


class Track(Base):
    __tablename__ = "tracks"
    __table_args__ = (Index("ix_tracks_job_frame", "job_id", "frame"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False)
    label_id: Mapped[int] = mapped_column(ForeignKey("labels.id", ondelete="CASCADE"), nullable=False)
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("tracks.id", ondelete="CASCADE"), nullable=True, index=True
    )
    frame: Mapped[int] = mapped_column(Integer, nullable=False)
    group: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    source: Mapped[str] = mapped_column(String(16), nullable=False, default="manual")
    attributes: Mapped[str] = mapped_column(Text, nullable=False, default="[]")


class TrackedShape(Base):
    """A keyframe of a track."""

    __tablename__ = "tracked_shapes"
    __table_args__ = (Index("ix_tracked_shapes_track_frame", "track_id", "frame"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"), nullable=False)
    frame: Mapped[int] = mapped_column(Integer, nullable=False)
    type: Mapped[str] = mapped_column(String(16), nullable=False)
    occluded: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    outside: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    z_order: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    rotation: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    points: Mapped[str] = mapped_column(Text, nullable=False, default="[]")
    attributes: Mapped[str] = mapped_column(Text, nullable=False, default="[]")


# --- background requests --------------------------------------------------------------------


class BackgroundRequest(Base):
    """A long operation (create, import, export, backup, auto-annotate) and its progress.

    The row is the source of truth for ``/api/requests`` whichever queue backend runs the job.
    """

    __tablename__ = "requests"
    id: Mapped[str] = mapped_column(String(512), primary_key=True)
    #: "create", "import", "export", "autoannotate", ...
    action: Mapped[str] = mapped_column(String(32), nullable=False)
    #: "task", "project", "job"
    target: Mapped[str] = mapped_column(String(32), nullable=False)
    subresource: Mapped[str | None] = mapped_column(String(32), nullable=True)
    project_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    task_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    job_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    org_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    format: Mapped[str | None] = mapped_column(String(128), nullable=True)
    function_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lightweight: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    #: "queued", "started", "failed", "finished"
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="queued", index=True)
    message: Mapped[str] = mapped_column(Text, nullable=False, default="")
    progress: Mapped[float | None] = mapped_column(Float, nullable=True)
    owner_id: Mapped[int | None] = _user_fk()
    created_date: Mapped[dt.datetime] = _created()
    started_date: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_date: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    expiry_date: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    result_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    result_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: where the result file lives (exports), relative to the data dir
    result_file: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    #: the job to run: queue, registered function name and its JSON keyword arguments
    queue: Mapped[str] = mapped_column(String(32), nullable=False)
    job_name: Mapped[str] = mapped_column(String(128), nullable=False)
    job_kwargs: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    #: until when the worker running the request holds it; it renews this while the job runs, and
    #: a request whose lease lapsed (its worker died) is queued again
    lease_expires: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: what the running attempt made that is not yet the result (JSON list of ``[kind, ref]``),
    #: removed when the attempt is retried or the request ends without it
    leftovers: Mapped[str] = mapped_column(Text, nullable=False, default="[]", server_default="[]")
    #: the id of the HTTP request that started it (``X-Request-ID``), bound again where its job runs
    #: so that the job's log lines carry it too
    origin_request_id: Mapped[str | None] = mapped_column(String(128), nullable=True)


# --- events and webhooks -----------------------------------------------------------------------


class EventRecord(Base):
    """An event, written in the same transaction as the change it describes (an outbox): a
    rolled-back change leaves none, and one committed is dispatched even if the process dies
    before dispatching it (``dispatched`` stays false until it is). Also the event log behind
    ``GET /api/events``, pruned by age."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), nullable=False, unique=True)
    #: CVAT's event key: ``create:task``, ``update:job``, ``completed:request[export:dataset]``
    type: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    #: what the payload describes: ``task``, ``job``, ``request``...
    resource: Mapped[str] = mapped_column(String(32), nullable=False)
    resource_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    org_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    project_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    task_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    job_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    created_date: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow, index=True)
    #: the event body as JSON (``{"event", "<resource>": {...}, "sender", "changes"?...}``)
    payload: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    dispatched: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, index=True)


class Webhook(Base):
    """A webhook of the webhooks plugin (CVAT's ``Webhook``)."""

    __tablename__ = "webhooks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    target_url: Mapped[str] = mapped_column(String(8192), nullable=False)
    description: Mapped[str] = mapped_column(String(128), nullable=False, default="")
    #: "project", "organization" or "server"
    type: Mapped[str] = mapped_column(String(16), nullable=False)
    content_type: Mapped[str] = mapped_column(String(64), nullable=False, default="application/json")
    secret: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    enable_ssl: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    #: JSON list of event keys
    events: Mapped[str] = mapped_column(Text, nullable=False, default="[]")
    #: JSON object of extra request headers (secrets: never shown)
    headers: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    owner_id: Mapped[int | None] = _user_fk()
    # No foreign keys on the scope: deleting a project or organization records its ``delete:*``
    # event in the same transaction, and the webhooks of what was deleted must still be there when
    # that event is fanned out and delivered. The webhooks plugin hides such orphans from the API
    # and prunes them once nothing is left to deliver to them.
    project_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    organization_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    created_date: Mapped[dt.datetime] = _created()
    updated_date: Mapped[dt.datetime] = _updated()


class WebhookDelivery(Base):
    """One attempt to deliver one event to one webhook (CVAT's ``WebhookDelivery``)."""

    __tablename__ = "webhook_deliveries"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(64), nullable=False)
    #: the event's id and the delivery's (the same on every attempt): receivers de-duplicate on them
    event_uuid: Mapped[str | None] = mapped_column(String(36), nullable=True)
    delivery_uuid: Mapped[str] = mapped_column(String(36), nullable=False, index=True)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    redelivery: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    attempt: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    #: milliseconds
    request_duration: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    changed_fields: Mapped[str] = mapped_column(Text, nullable=False, default="")
    request: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    response: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_date: Mapped[dt.datetime] = _created()
    updated_date: Mapped[dt.datetime] = _updated()


class WebhookJob(Base):
    """A delivery still to make (or to retry): the webhooks plugin's durable work queue. A worker
    claims a due row for a lease; a worker that dies mid-delivery loses the lease and the row is
    delivered again."""

    __tablename__ = "webhook_jobs"
    __table_args__ = (UniqueConstraint("webhook_id", "delivery_uuid"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(64), nullable=False)
    event_uuid: Mapped[str | None] = mapped_column(String(36), nullable=True)
    delivery_uuid: Mapped[str] = mapped_column(String(36), nullable=False)
    #: the payload without ``webhook_id`` (added when sent), as JSON
    payload: Mapped[str] = mapped_column(Text, nullable=False)
    changed_fields: Mapped[str] = mapped_column(Text, nullable=False, default="")
    redelivery: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    #: the number the next attempt will have
    attempt: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    due_date: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow, index=True)
    #: a worker holds the row until then
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_date: Mapped[dt.datetime] = _created()


# --- review: issues and comments ---------------------------------------------------------------


class Issue(Base):
    """A reviewer's remark on a region of one frame of a job (CVAT's ``Issue``); its comments are
    the conversation about it."""

    __tablename__ = "issues"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    #: an absolute frame number of the task, within the job's range
    frame: Mapped[int] = mapped_column(Integer, nullable=False)
    #: JSON list of floats: the flat polygon ``[x1, y1, x2, y2, ...]`` on the frame
    position: Mapped[str] = mapped_column(Text, nullable=False, default="[]")
    owner_id: Mapped[int | None] = _user_fk()
    assignee_id: Mapped[int | None] = _user_fk()
    resolved: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_date: Mapped[dt.datetime] = _created()
    updated_date: Mapped[dt.datetime] = _updated()


class Comment(Base):
    """One message in an issue's conversation (CVAT's ``Comment``)."""

    __tablename__ = "comments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"), index=True)
    owner_id: Mapped[int | None] = _user_fk()
    message: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_date: Mapped[dt.datetime] = _created()
    updated_date: Mapped[dt.datetime] = _updated()


# --- what CVAT's web UI configures per task or project --------------------------------------


class QualitySettings(Base):
    """How annotations are compared with ground truth (CVAT's ``QualitySettings``): one row for
    each task and each project, with CVAT's defaults."""

    __tablename__ = "quality_settings"
    __table_args__ = (CheckConstraint("(task_id IS NULL) <> (project_id IS NULL)", name="task_or_project"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int | None] = mapped_column(
        ForeignKey("tasks.id", ondelete="CASCADE"), nullable=True, unique=True
    )
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=True, unique=True
    )
    inherit: Mapped[bool] = mapped_column(Boolean, nullable=False)
    job_filter: Mapped[str] = mapped_column(String(1024), nullable=False)
    target_metric: Mapped[str] = mapped_column(String(32), nullable=False)
    target_metric_threshold: Mapped[float] = mapped_column(Float, nullable=False)
    max_validations_per_job: Mapped[int] = mapped_column(Integer, nullable=False)
    iou_threshold: Mapped[float] = mapped_column(Float, nullable=False)
    oks_sigma: Mapped[float] = mapped_column(Float, nullable=False)
    point_size_base: Mapped[str] = mapped_column(String(32), nullable=False)
    line_thickness: Mapped[float] = mapped_column(Float, nullable=False)
    low_overlap_threshold: Mapped[float] = mapped_column(Float, nullable=False)
    compare_line_orientation: Mapped[bool] = mapped_column(Boolean, nullable=False)
    line_orientation_threshold: Mapped[float] = mapped_column(Float, nullable=False)
    compare_groups: Mapped[bool] = mapped_column(Boolean, nullable=False)
    group_match_threshold: Mapped[float] = mapped_column(Float, nullable=False)
    check_covered_annotations: Mapped[bool] = mapped_column(Boolean, nullable=False)
    object_visibility_threshold: Mapped[float] = mapped_column(Float, nullable=False)
    panoptic_comparison: Mapped[bool] = mapped_column(Boolean, nullable=False)
    compare_attributes: Mapped[bool] = mapped_column(Boolean, nullable=False)
    empty_is_annotated: Mapped[bool] = mapped_column(Boolean, nullable=False)
    created_date: Mapped[dt.datetime] = _created()
    updated_date: Mapped[dt.datetime] = _updated()


class ConsensusSettings(Base):
    """How consensus replicas' annotations are merged (CVAT's ``ConsensusSettings``), per task."""

    __tablename__ = "consensus_settings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(
        ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False, unique=True
    )
    iou_threshold: Mapped[float] = mapped_column(Float, nullable=False)


class AnnotationGuide(Base):
    """A task's or project's annotation guide: markdown, with images kept as assets."""

    __tablename__ = "annotation_guides"
    __table_args__ = (CheckConstraint("(task_id IS NULL) <> (project_id IS NULL)", name="task_or_project"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int | None] = mapped_column(
        ForeignKey("tasks.id", ondelete="CASCADE"), nullable=True, unique=True
    )
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=True, unique=True
    )
    markdown: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_date: Mapped[dt.datetime] = _created()
    updated_date: Mapped[dt.datetime] = _updated()


class Asset(Base):
    """A file (an image) an annotation guide shows; its bytes live in the storage backend."""

    __tablename__ = "assets"
    uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    filename: Mapped[str] = mapped_column(String(1024), nullable=False)
    content_type: Mapped[str] = mapped_column(String(128), nullable=False)
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    owner_id: Mapped[int | None] = _user_fk()
    guide_id: Mapped[int] = mapped_column(
        ForeignKey("annotation_guides.id", ondelete="CASCADE"), nullable=False, index=True
    )
    created_date: Mapped[dt.datetime] = _created()


class LoginThrottle(Base):
    """How far one client address, account or (account, address) pair has spent its budget of
    failed logins (``core.services.attempt_budgets``). A row whose ``tat`` is past is the same as
    no row; rows are pruned once they are."""

    __tablename__ = "login_throttles"
    #: ``address:<ip>``, ``account:<login>`` or ``pair:<login>|<ip>``
    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    #: the generic cell-rate algorithm's theoretical arrival time, in Unix seconds
    tat: Mapped[float] = mapped_column(Float, nullable=False, index=True)


def _never_reuse_ids() -> None:
    """SQLite hands a deleted row's id to the next insert unless told ``AUTOINCREMENT``; clients
    that remember ids (labels, annotations) must never see one come back meaning something else."""
    for table in Base.metadata.tables.values():
        id_column = table.columns.get("id")
        if id_column is not None and id_column.primary_key and id_column.autoincrement in (True, "auto"):
            if not isinstance(id_column.type, String):
                table.dialect_options["sqlite"]["autoincrement"] = True


_never_reuse_ids()
