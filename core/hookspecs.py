"""The hook specifications: the contract between annota and its plugins.

Every hook here is documented in ``docs/plugins.md`` (generated from these docstrings) and has a
test named ``test_hook_<name>``. Hooks grow by gaining arguments, never by changing them: a
hookimpl may accept any subset of a spec's arguments.

Three kinds of hooks:

* collectors (``register_*``), called once at start-up with a ``register`` callback, so the host
  can validate what a plugin contributes, refuse duplicates and remember which plugin owns what;
* resolvers (``firstresult``), where the first plugin that answers (not ``None``) wins and the
  built-in answer is registered ``trylast``;
* lifecycle hooks, where every plugin is called. Their results may be awaitables; the host
  awaits them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from annota.core import hookspec

if TYPE_CHECKING:
    from annota.core.models.runner import ModelDeclaration, RunnerFactory


@hookspec
def register_config(register: Any) -> None:
    """Declare the plugin's typed configuration.

    Call ``register(ConfigStruct)`` with a ``msgspec.Struct`` class (use ``forbid_unknown_fields=True``).
    Its values come from ``[plugins.<name>]`` in ``annota.toml`` and ``ANNOTA_<NAME>_<KEY>``
    environment variables, are validated at start-up (an error names the plugin and the key), and are
    read back with ``plugin_manager.config("<name>")``. Secrets may be written ``{env = "VAR"}`` or
    ``{file = "/path"}``.
    """


@hookspec
def register_routes(register: Any) -> None:
    """Add HTTP routes to the API.

    Call ``register(path, endpoint, methods=["GET"], name=None)`` once per route. ``endpoint`` is an
    ``async def endpoint(request) -> Response`` built with ``annota.runtime.web``; the route answers
    with and without a trailing slash. Paths must not collide with another plugin's or the core's.
    """


@hookspec
def register_jobs(register: Any) -> None:
    """Add background job functions.

    Call ``register(name, function, queue="utils", timeout=3600, max_tries=3)``. ``function`` is
    ``async def function(ctx: JobContext, **kwargs) -> Any``; it runs in the in-process runner or in an
    ``annota worker`` process, so it must be idempotent (a killed job runs again). ``queue`` is one of
    ``import``, ``export``, ``annotation``, ``webhooks``, ``chunks``, ``utils``.

    A job that raises ends its request ``failed`` with the exception's message and is not retried; only
    a job whose worker died runs again, up to ``max_tries`` runs in all. A job running longer than
    ``timeout`` seconds (or the ``job_timeout`` setting, when lower) is stopped and its request fails.
    Returning a ``JobResult`` fills in the request's ``result_id``, ``result_url`` and ``message``.
    HTTP handlers start requests with ``annota.runtime.web.start_request``.

    ``every=seconds`` registers a periodic job instead: ``async def function(ctx)`` runs every that
    many seconds wherever ``queue`` is served (the in-process runner, or each ``annota worker``
    serving that queue), with no request row. Several workers may run it at once.
    """


@hookspec
def register_storage_backends(register: Any) -> None:
    """Add storage backends (where media, chunks and results are kept).

    Call ``register(name, factory)``. ``factory(config, settings)`` returns an
    ``annota.core.storage.StorageBackend`` (or an awaitable of one): ``config`` is the plugin's own
    validated configuration (``None`` if it declares none) and ``settings`` the core settings. The
    ``storage`` setting names the backend the server uses (default ``local``); it is created at
    start-up, available as ``app.storage``, and closed at shutdown. Names are unique across
    plugins.
    """


@hookspec
def register_cloud_providers(register: Any) -> None:
    """Serve CVAT cloud storages (``/api/cloudstorages``) of a provider.

    Call ``register(provider_type, factory)`` with one of CVAT's provider types
    (``AWS_S3_BUCKET``, ``AZURE_CONTAINER``, ``GOOGLE_CLOUD_STORAGE``) and
    ``factory(resource, credentials, specific_attributes, settings)``, which returns an
    ``annota.core.storage.StorageBackend`` on the bucket (or an awaitable of one): ``resource`` is
    the bucket or container name, ``credentials`` an ``annota.core.cloud.CloudCredentials``,
    ``specific_attributes`` CVAT's ``k=v&k=v`` attributes as a mapping (``region``,
    ``endpoint_url``, ``prefix``…) and ``settings`` the core settings. The host vets
    ``endpoint_url`` (no private addresses unless ``cloud_storage_allow_private_endpoints``)
    before every call, opens a backend per use and closes it afterwards; a factory whose client
    finds its endpoint elsewhere (a connection string) vets it with
    ``annota.core.cloud.vet_endpoint``. One plugin per provider type.
    """


@hookspec
def register_formats(register: Any) -> None:
    """Add dataset formats (import, export or both).

    Call ``register(annota.core.formats.registry.Format(...))`` once per format. A format has an exact
    display name ``"<name> <version>"`` (``"COCO 1.0"``), unique across plugins, declares what it
    carries (``carries``: tags, shape types, masks, skeletons, tracks, attributes, images...), and
    may give a ``detect(root) -> confidence`` for auto-detection. An exporter is
    ``export(dataset, output, options)``: it reads ``dataset`` (an ``annota.core.formats.model.Dataset``,
    streamed frame by frame) and writes files into ``output``. An importer is ``load(root, options)``:
    it reads the directory ``root`` and returns a ``Dataset`` (usually a ``StreamedDataset``) whose
    items are bound to frames by name, or by index where the format has no names. Errors are
    ``annota.core.errors.FormatError`` naming the file, line or JSON pointer and the annotation.
    The same formats serve the API's import/export and ``annota convert``.
    """


@hookspec
def register_model_runners(register: Callable[[str, RunnerFactory], None]) -> None:
    """Add auto-annotation model runner kinds (``onnx-yolo``, ``opencv-haar``, ``http`` …).

    Call ``register(kind, factory)``. ``factory(declaration)`` receives an
    ``annota.core.models.runner.ModelDeclaration`` of that kind and returns a
    ``annota.core.models.runner.LoadedModel``: the labels it may return (``LabelSpec``, skeletons with
    their ``points`` sublabels) and a blocking ``detect(frames, options)`` giving one list of
    ``Tag``/``Shape`` (labels by name, ``score`` set) per BGR frame. The host calls the factory once
    per process, the first time the model is used, and ``detect`` in a worker thread, one call at a
    time per model, with at most ``batch_size`` frames; ``close()`` at shutdown. Raise
    ``annota.core.models.runner.ModelError`` naming the model when it cannot load or answer. Kinds are
    unique across plugins; the declaration's ``options`` are the kind's own settings, validated by
    the factory.
    """


@hookspec
def register_models(register: Callable[[ModelDeclaration], None]) -> None:
    """Contribute models, as a pip-installed model package does.

    Call ``register(ModelDeclaration(name=..., kind=..., path=..., labels=[...], ...))`` once per
    model; ``path`` is usually a file inside the package. Such models join the ``[[models]]`` tables
    of ``annota.toml``: names are unique across both (a duplicate is a start-up error naming both
    sources), and the kind must be registered by some plugin through ``register_model_runners``.
    A model's name is its function id in CVAT's lambda API.
    """


@hookspec
def register_policies(register: Any) -> None:
    """Add authorization policies written in Rego (v1 syntax).

    Call ``register(path)`` with a directory of ``*.rego`` files or one file. Each file is one
    package named after the resource kind it governs (``package webhooks``) and answers ``allow``
    (a boolean, for one object: ``input`` is CVAT's document ``{"scope", "auth", "resource"}``) and
    ``filter`` (for lists: a filter as described under ``filter_query``). Policies of every plugin
    form one bundle: the embedded evaluator compiles it once per process, ``GET /api/auth/rules``
    publishes it for an OPA server. File names and packages are unique across plugins; files
    ending in ``_test.rego`` are left out. A policy must be a function of its input alone (no
    clock, no external data): evaluators may remember recent answers.
    """


@hookspec
def register_commands(register: Any) -> None:
    """Add sub-commands to the ``annota`` command line: call ``register(click_command)``."""


@hookspec(firstresult=True)
def authenticate(request: Any) -> Any:
    """Tell who sent an HTTP request.

    Return an ``annota.core.access.Identity`` for a known caller, ``None`` to let the next plugin try
    (the caller is anonymous when nobody answers), or raise ``NotAuthenticated`` for credentials that
    are present but wrong. ``request`` is a Starlette ``Request``. May return an awaitable.
    """


@hookspec(firstresult=True)
def authorize(identity: Any, scope: str, resource: Any, app: Any) -> Any:
    """Decide whether ``identity`` may act with ``scope`` (CVAT's scope names: ``view``,
    ``update:desc``, ``create@project`` …) on ``resource`` (an ``annota.core.access.Resource``
    carrying CVAT's OPA input document). ``app`` is the running ``AppState`` (its ``policies``
    hold the Rego bundle).

    Return ``True``/``False`` (or an ``annota.core.access.Decision`` with reasons), or ``None`` to
    let the next plugin decide. With no answer at all the request is refused (fail closed). Raise
    ``annota.core.errors.ServiceUnavailable`` when the decision cannot be made (a policy server
    is down). May return an awaitable.
    """


@hookspec(firstresult=True)
def filter_query(identity: Any, scope: str, resource_type: str, app: Any) -> Any:
    """Scope a list endpoint: return the filter that selects what ``identity`` may list of
    ``resource_type`` (``projects``, ``tasks``, ``jobs``, ``labels``, ``requests``, ``users``…).

    The filter is data (see ``annota.core.access.Filter``): ``{}`` matches everything,
    ``{"owner_id": 5}`` is an equality test, ``["|", a, b]``, ``["&", a, b]`` and ``["~", a]`` combine
    them. The host translates it into the SQL ``WHERE`` clause. ``None`` lets the next plugin
    decide; with no answer the list is empty. May return an awaitable.
    """


@hookspec
def on_event(event: Any, sessionmaker: Any) -> Any:
    """Something happened: ``event`` is an ``annota.core.events.Event`` (``create:task``,
    ``update:job`` with ``changes``, ``completed:request[export:dataset]``...), told after the
    change committed; a rolled-back change tells nothing. ``sessionmaker`` opens sessions on the
    database that recorded the event (for subscribers that keep state there).

    Delivery is at least once: a subscriber may see the same ``event.id`` again (after a crash),
    so it must be idempotent. It runs in a background task: of the server that made the change on
    the embedded defaults, of the worker serving ``utils`` when Redis is configured (servers then
    only record events). Exceptions are logged and affect neither the change nor other plugins.
    May return an awaitable.
    """


@hookspec
def on_events(events: Any, sessionmaker: Any) -> Any:
    """The batch form of ``on_event``: ``events`` is a list of committed events in the order they
    were recorded, for subscribers that handle several at once more cheaply than one by one (one
    transaction for all). The same guarantees apply: after commit, at least once, in the
    background, failures logged. A plugin implements ``on_event`` or ``on_events``, not both. May
    return an awaitable.
    """


@hookspec
def check_health(app: Any) -> Any:
    """Report on what the plugin depends on, for ``GET /api/server/health``.

    Return ``{name: "ok"}`` or ``{name: "error: <why>"}`` (or an awaitable of it); any entry not
    ``"ok"`` makes the server report itself unavailable (503). ``None`` reports nothing.
    """


@hookspec
def startup(app: Any) -> Any:
    """Called once when the server (or a worker) starts, after the database is ready.

    ``app`` is the running ``annota.runtime.state.AppState``. May return an awaitable.
    """


@hookspec
def shutdown(app: Any) -> Any:
    """Called once when the server (or a worker) stops. May return an awaitable."""
