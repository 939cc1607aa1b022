"""HTTP endpoints of the core API; each module lists its ``routes`` as (path, endpoint, methods)."""

from __future__ import annotations

from typing import Any

# a plain ``from … import annotations`` would find this module's ``__future__`` feature instead
import annota.runtime.api.annotations as annotations_api
from annota.runtime.api import (
    assets,
    backups,
    client_events,
    cloudstorages,
    comments,
    consensus,
    datasets,
    events,
    guides,
    invitations,
    issues,
    jobs,
    labels,
    lambda_functions,
    media,
    memberships,
    organizations,
    projects,
    quality,
    requests,
    schema,
    server,
    task_data,
    tasks,
    users,
    validation_layout,
)

CORE_ROUTES: list[tuple[str, Any, list[str]]] = [
    *server.routes,
    *schema.routes,
    *projects.routes,
    *tasks.routes,
    *task_data.routes,
    *jobs.routes,
    *media.routes,
    *annotations_api.routes,
    *datasets.routes,
    *backups.routes,
    *labels.routes,
    *users.routes,
    *requests.routes,
    *events.routes,
    *organizations.routes,
    *memberships.routes,
    *invitations.routes,
    *issues.routes,
    *comments.routes,
    *client_events.routes,
    *validation_layout.routes,
    *quality.routes,
    *consensus.routes,
    *guides.routes,
    *assets.routes,
    *lambda_functions.routes,
    *cloudstorages.routes,
]
