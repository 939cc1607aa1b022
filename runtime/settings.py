"""Settings: ``annota.toml`` plus ``ANNOTA_*`` environment variables (the environment wins), plus
command-line flags (which win over both).

Every command (``serve``, ``worker``, ``users create``…) reads the same settings, so they act on the
same data directory and database.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import platformdirs

from annota.core.errors import ConfigError
from annota.core.plugins import convert_config, resolve_secrets
from annota.core.schemas.user_agreements import UserAgreement

ENV_PREFIX = "ANNOTA_"
MiB = 1024 * 1024

#: Keys whose values ``annota config show`` masks.
SECRET_WORDS = ("secret", "password", "token", "key", "connection_string")


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The core settings. Plugin settings live under ``[plugins.<name>]``."""

    #: where the SQLite database, media and results live (default: the per-user data dir)
    data_dir: str = ""
    #: ``sqlite:///path`` (default: ``<data_dir>/annota.db``) or ``postgresql://user@host/db``
    database_url: str = ""
    #: ``redis://host:port/db``: run background jobs on arq workers instead of in-process
    redis_url: str = ""
    #: the externally visible base URL (``https://annota.example.com``); default: from the request
    public_url: str = ""
    #: signs nothing on the wire today but seeds derived secrets; generated and kept in the data dir
    secret_key: str = ""
    #: whether ``POST /api/auth/register`` creates accounts. Unset: only while the server listens on
    #: loopback, and then only for clients on this machine; ``annota serve`` says which at start-up
    allow_registration: bool | None = None
    #: whether invited users confirm their invitations; off (CVAT's ``ORG_INVITATION_CONFIRM=No``),
    #: an invitation makes its (registered) invitee a member at once
    invitation_confirm: bool = False
    #: largest request body in bytes for ordinary JSON endpoints
    max_body_size: int = 16 * MiB
    #: largest request body in bytes for annotation and upload endpoints
    max_upload_body_size: int = 1024 * MiB
    #: cookie session lifetime in seconds
    session_max_age: int = 14 * 24 * 3600
    #: how long finished background requests are listed, in seconds
    request_ttl: int = 24 * 3600
    #: how long a finished export (dataset, annotations, backup) is kept for download and reuse, in seconds
    export_ttl: int = 24 * 3600
    #: how long events stay in the event log (``GET /api/events``) once dispatched, in days
    event_retention_days: Annotated[float, msgspec.Meta(gt=0)] = 30
    #: concurrent jobs per queue in the in-process runner
    inprocess_concurrency: int = 2
    #: if set, no background job runs longer than this many seconds, whatever its own limit
    job_timeout: float = 0
    #: prefix of the queue names in Redis, so several installations can share one Redis
    queue_prefix: str = "annota"
    #: with arq: a request still queued this many seconds after it was created, with no job for it
    #: in Redis (its enqueue was lost, or Redis lost its data), is queued again by the workers' sweep
    requeue_after: Annotated[float, msgspec.Meta(ge=0)] = 60
    #: seconds a worker holds a running request between renewals (it renews every third of it); a
    #: request whose worker died is queued again by the sweep once this lapsed, whatever the job's limit
    request_lease: Annotated[float, msgspec.Meta(gt=0)] = 30
    #: seconds between two sweeps of each ``annota worker`` for requests whose lease lapsed or whose
    #: Redis job is missing: a killed worker's request runs again within ``request_lease`` plus this
    sweep_interval: Annotated[float, msgspec.Meta(gt=0)] = 15
    log_level: str = "info"
    #: ``text`` (lines for people) or ``json`` (one object per line, for log stores); either way
    #: each line carries the id of the HTTP request it belongs to, in the jobs that request started too
    log_format: Literal["text", "json"] = "text"
    #: the storage backend for media and results, by name (``local``: ``<data_dir>/storage``)
    storage: str = "local"
    #: answer requests for chunks, previews and original image frames, once authorized, with a
    #: redirect to the storage backend's presigned URL (s3, azure, gcs), so media bytes go from
    #: the bucket to the client; the bucket must allow the web UI's origin (CORS)
    serve_media_by_redirect: bool = False
    #: the directory ``server_files`` name files in (CVAT's share); empty: no share
    share_dir: str = ""
    #: largest file accepted through ``remote_files``, in bytes
    max_remote_file_size: int = 1024 * MiB
    #: let ``remote_files`` reach private, loopback and link-local addresses (off: SSRF protection)
    remote_files_allow_private: bool = False
    #: let cloud storages (``/api/cloudstorages``) use endpoints on private, loopback and link-local
    #: addresses (off: any user could point the server at its own network)
    cloud_storage_allow_private_endpoints: bool = False
    #: largest total an uploaded archive (task media, dataset, backup) may expand to, in bytes
    max_archive_expanded_size: int = 8 * 1024 * MiB
    #: an archive, and each member, may expand to at most this many times its compressed size
    #: (zip bombs; JPEG and video barely compress, annotation XML/JSON 10-30x); 0: no limit
    max_archive_compression_ratio: Annotated[float, msgspec.Meta(ge=0)] = 100
    #: expanded bytes below which an archive's compression ratio is not checked
    archive_ratio_floor: Annotated[int, msgspec.Meta(ge=0)] = 128 * MiB
    #: most members a task's archives may hold
    max_archive_members: int = 100_000
    #: largest file a TUS upload may announce (``Upload-Length``), in bytes
    max_tus_upload_size: int = 25 * 1024 * MiB
    #: a directory holding a built single-page web UI (CVAT's ``cvat-ui``) to serve at ``/``
    ui_dir: str = ""
    #: agreements the registration form shows (``[[user_agreements]]`` tables: name, display_text,
    #: url, required, text_prefix); registering needs the required ones accepted
    user_agreements: list[UserAgreement] = []
    #: most events one ``POST /api/events`` (the web UI's own events) may carry
    client_events_max_batch: Annotated[int, msgspec.Meta(gt=0)] = 500
    #: largest ``payload`` of one such event, in bytes
    client_events_max_payload_bytes: Annotated[int, msgspec.Meta(gt=0)] = 64 * 1024
    #: ``POST /api/events`` requests one user may make per minute (per server process; 0: no limit)
    client_events_per_minute: Annotated[int, msgspec.Meta(ge=0)] = 120
    #: auto-annotation models (``[[models]]`` tables: name, kind, path, labels, conf_threshold,
    #: batch_size, providers, threads, description, options), validated at start-up
    models: list[dict[str, Any]] = []
    #: plugin entry-point names not to load
    disabled_plugins: list[str] = []
    #: the bearer token Prometheus sends to ``GET /metrics``; empty: ``/metrics`` answers only
    #: clients on loopback or private addresses (keep it off the public proxy either way)
    metrics_token: str = ""
    #: ``[plugins.<name>]`` tables, validated by each plugin's config class
    plugin_settings: dict[str, dict[str, Any]] = {}

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def default_data_dir() -> str:
    return platformdirs.user_data_dir("annota", appauthor=False)


def _read_file(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path!r} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path!r}: {exc}") from exc


def _split_plugins(values: dict[str, Any], where: str) -> None:
    plugins = values.pop("plugins", None)
    if plugins is None:
        return
    if not isinstance(plugins, dict):
        raise ConfigError(f"{where}: [plugins] must be a table")
    disabled = plugins.pop("disabled", None)
    if disabled is not None:
        values["disabled_plugins"] = disabled
    for name, table in plugins.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: [plugins.{name}] must be a table")
    values["plugin_settings"] = plugins


def _from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in Settings.__struct_fields__:
        if name in ("plugin_settings", "disabled_plugins", "models"):
            continue
        raw = environ.get(ENV_PREFIX + name.upper())
        if raw is not None:
            values[name] = raw
    disabled = environ.get(ENV_PREFIX + "DISABLED_PLUGINS")
    if disabled is not None:
        values["disabled_plugins"] = [name.strip() for name in disabled.split(",") if name.strip()]
    return values


def load_settings(
    config_path: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Merge defaults, the config file, the environment and explicit overrides, then validate."""
    environ = os.environ if environ is None else environ
    config_path = config_path or environ.get(ENV_PREFIX + "CONFIG") or None
    values: dict[str, Any] = {}
    if config_path:
        values.update(_read_file(config_path))
        _split_plugins(values, config_path)
    values.update(_from_environment(environ))
    values.update({key: value for key, value in (overrides or {}).items() if value is not None})
    plugin_settings = values.pop("plugin_settings", {})
    values = resolve_secrets(values, "settings")
    settings: Settings = convert_config(Settings, values, "settings")
    settings.plugin_settings = plugin_settings
    return finalize(settings)


def finalize(settings: Settings) -> Settings:
    """Fill in what derives from the data directory."""
    if not settings.data_dir:
        settings.data_dir = default_data_dir()
    settings.data_dir = str(Path(settings.data_dir).expanduser().resolve())
    if not settings.database_url:
        settings.database_url = f"sqlite:///{Path(settings.data_dir) / 'annota.db'}"
    settings.public_url = settings.public_url.rstrip("/")
    return settings


def ensure_data_dir(settings: Settings) -> None:
    """Create the data dir and, when none is configured, a persistent secret key inside it."""
    path = settings.data_path
    path.mkdir(parents=True, exist_ok=True)
    if not settings.secret_key:
        key_file = path / "secret_key"
        if not key_file.exists():
            key_file.write_text(secrets.token_urlsafe(48))
            key_file.chmod(0o600)
        settings.secret_key = key_file.read_text().strip()


def _mask(key: str, value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _mask(k, v) for k, v in value.items()}
    if value and any(word in key.lower() for word in SECRET_WORDS):
        return "********"
    return value


def masked(settings: Settings, plugin_configs: Mapping[str, Any]) -> dict[str, Any]:
    """The effective configuration with secrets hidden, for ``annota config show``."""
    data = msgspec.to_builtins(settings)
    data.pop("plugin_settings")
    data["database_url"] = _mask_url(settings.database_url)
    data["redis_url"] = _mask_url(settings.redis_url)
    result = {key: _mask(key, value) for key, value in data.items()}
    result["plugins"] = {
        name: _mask(name, msgspec.to_builtins(config)) for name, config in plugin_configs.items()
    }
    return result


def _mask_url(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":********@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url
