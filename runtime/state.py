"""Everything a running server or worker holds: settings, plugins, database, queue, routes, jobs.

``open_state`` is the one start-up sequence shared by ``annota serve``, ``annota worker`` and the
test fixtures, so they cannot drift apart.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from annota.core import event_dispatch
from annota.core.cloud import CloudProviderRegistry
from annota.core.db import migrate
from annota.core.db.engine import create_engine, create_sessionmaker
from annota.core.errors import ConfigError
from annota.core.formats.registry import FormatRegistry
from annota.core.models import annotate
from annota.core.models.host import ModelHost
from annota.core.models.registry import ModelRegistry
from annota.core.plugins import PluginManager
from annota.core.policies import PolicyRegistry
from annota.core.queue import JobContext, JobRegistry, QueueBackend
from annota.core.services import backups, dataset_jobs, task_data
from annota.core.services.cloudstorages import bucket_media
from annota.core.storage import StorageBackend, StorageRegistry
from annota.runtime import housekeeping
from annota.runtime.api import CORE_ROUTES
from annota.runtime.settings import Settings, ensure_data_dir

logger = logging.getLogger(__name__)


@dataclass
class PluginRoute:
    path: str
    endpoint: Any
    methods: list[str]
    name: str | None
    plugin: str


@dataclass
class AppState:
    settings: Settings
    plugins: PluginManager
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    jobs: JobRegistry
    storage_backends: StorageRegistry
    #: the backend named by the ``storage`` setting, created at start-up
    storage: StorageBackend
    routes: list[PluginRoute] = field(default_factory=list)
    queue: QueueBackend | None = None
    formats: FormatRegistry = field(default_factory=FormatRegistry)
    #: every plugin's Rego modules
    policies: PolicyRegistry = field(default_factory=PolicyRegistry)
    #: hands committed events to the plugins' ``on_event`` (none when workers do it)
    events: event_dispatch.Dispatcher | None = None
    #: the auto-annotation models, loaded in this process when first used
    models: ModelHost = field(default_factory=lambda: ModelHost(ModelRegistry()))
    #: what turns cloud storage rows into backends, by provider type
    cloud_providers: CloudProviderRegistry = field(default_factory=CloudProviderRegistry)

    def job_context(self, request_id: str, attempt: int) -> JobContext:
        return JobContext(
            request_id=request_id,
            sessionmaker=self.sessionmaker,
            settings=self.settings,
            plugins=self.plugins,
            attempt=attempt,
            storage=self.storage,
            formats=self.formats,
            models=self.models,
            cloud_providers=self.cloud_providers,
        )


def load_plugins(
    settings: Settings, extra: Mapping[str, Any] | None = None, entry_points: bool = True
) -> PluginManager:
    """Load entry-point plugins (minus the disabled ones) plus ``extra`` given in code, then
    validate hook names and every plugin's configuration."""
    plugins = PluginManager()
    if entry_points:
        plugins.load_entry_points(disabled=settings.disabled_plugins)
    for name, plugin in (extra or {}).items():
        plugins.register(plugin, name=name)
    plugins.check()
    plugins.configure(settings.plugin_settings, os.environ)
    return plugins


def collect_routes(plugins: PluginManager) -> list[PluginRoute]:
    routes: list[PluginRoute] = []
    # (path, method) -> who owns it; a plugin must not shadow the core API or another plugin
    seen: dict[tuple[str, str], str] = {
        (path.rstrip("/"), method): "the core API" for path, _, methods in CORE_ROUTES for method in methods
    }

    def register(
        plugin: str, path: str, endpoint: Any, methods: list[str] | None = None, name: str | None = None
    ) -> None:
        if not path.startswith("/"):
            raise ConfigError(f"plugin {plugin}: route path {path!r} must start with '/'")
        methods = [m.upper() for m in (methods or ["GET"])]
        for method in methods:
            key = (path.rstrip("/"), method)
            if key in seen:
                owner = seen[key]
                raise ConfigError(f"plugin {plugin}: route {method} {path} is already registered by {owner}")
            seen[key] = f"plugin {plugin}"
        routes.append(PluginRoute(path, endpoint, methods, name, plugin))

    plugins.collect("register_routes", register)
    return routes


def collect_jobs(plugins: PluginManager, settings: Settings) -> JobRegistry:
    registry = JobRegistry()
    housekeeping.register(registry)
    task_data.register(registry)
    if settings.redis_url:
        # workers dispatch every committed event: the servers only record them
        registry.register(
            "annota", "annota.events.dispatch", event_dispatch.dispatch_all, queue="utils",
            every=event_dispatch.POLL_INTERVAL,
        )  # fmt: skip
    else:
        registry.register("annota", "annota.events.sweep", event_dispatch.sweep, queue="utils", every=5)
    dataset_jobs.register(registry)
    backups.register(registry)
    annotate.register(registry)
    plugins.collect("register_jobs", registry.register)
    return registry


def collect_formats(plugins: PluginManager) -> FormatRegistry:
    registry = FormatRegistry()
    plugins.collect("register_formats", registry.register)
    return registry


def collect_policies(plugins: PluginManager) -> PolicyRegistry:
    registry = PolicyRegistry()
    plugins.collect("register_policies", registry.register)
    return registry


def collect_models(plugins: PluginManager, settings: Settings) -> ModelRegistry:
    """Runner kinds from plugins, models from ``[[models]]`` and plugins, checked together."""
    registry = ModelRegistry()
    plugins.collect("register_model_runners", registry.register_kind)
    registry.add_configured(settings.models)
    plugins.collect("register_models", registry.register_model)
    registry.check()
    return registry


def collect_cloud_providers(plugins: PluginManager) -> CloudProviderRegistry:
    registry = CloudProviderRegistry()
    plugins.collect("register_cloud_providers", registry.register)
    return registry


def collect_storage_backends(plugins: PluginManager) -> StorageRegistry:
    registry = StorageRegistry()
    plugins.collect("register_storage_backends", registry.register)
    return registry


async def create_storage(
    settings: Settings, plugins: PluginManager, registry: StorageRegistry
) -> StorageBackend:
    """The backend the ``storage`` setting names, built with its plugin's configuration."""
    owner = registry.get(settings.storage).plugin
    config = plugins.config(owner) if owner in plugins.config_classes else None
    return await registry.create(settings.storage, config, settings)


async def open_state(
    settings: Settings,
    plugins: PluginManager | None = None,
    *,
    auto_migrate: bool | None = None,
) -> AppState:
    """Prepare the data dir, plugins and database. SQLite is migrated automatically (unless told
    otherwise); PostgreSQL must be migrated with ``annota migrate`` first."""
    ensure_data_dir(settings)
    plugins = plugins or load_plugins(settings)
    storage_backends = collect_storage_backends(plugins)
    # an unknown backend name is a configuration error: report it before touching the database
    storage_backends.get(settings.storage)
    engine = create_engine(settings.database_url)
    if auto_migrate is None:
        auto_migrate = settings.is_sqlite
    if auto_migrate:
        await migrate.upgrade(engine)
    elif not await migrate.is_up_to_date(engine):
        await engine.dispose()
        raise ConfigError(
            "The database schema is not up to date. Run `annota migrate` (with the same settings) first."
        )
    try:
        jobs = collect_jobs(plugins, settings)
        routes = collect_routes(plugins)
        formats = collect_formats(plugins)
        policies = collect_policies(plugins)
        models = collect_models(plugins, settings)
        cloud_providers = collect_cloud_providers(plugins)
        storage = await create_storage(settings, plugins, storage_backends)
    except BaseException:
        await engine.dispose()
        raise
    sessionmaker = create_sessionmaker(engine)
    # chunks of tasks whose media are in a bucket are built by whichever process first reads them
    bucket_media.install(storage, bucket_media.BucketChunks(sessionmaker, cloud_providers, settings))
    state = AppState(
        settings=settings,
        plugins=plugins,
        engine=engine,
        sessionmaker=sessionmaker,
        jobs=jobs,
        storage_backends=storage_backends,
        storage=storage,
        routes=routes,
        formats=formats,
        policies=policies,
        models=ModelHost(models),
        cloud_providers=cloud_providers,
        # with workers (Redis), they dispatch the events; the embedded runner leaves it to us
        events=None if settings.redis_url else event_dispatch.install(sessionmaker, plugins),
    )
    return state


async def close_state(state: AppState) -> None:
    if state.events is not None:
        await state.events.close()
    try:
        if state.queue is not None:
            await state.queue.close()
    finally:
        state.models.close()
        try:
            await state.storage.close()
        finally:
            await state.engine.dispose()
