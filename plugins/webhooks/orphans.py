"""Orphaned webhooks: those of a project or organization that no longer exists.

A webhook keeps its row when its project or organization is deleted (no foreign key on its scope):
the ``delete:*`` event recorded in the deleting transaction is fanned out after the commit, and the
webhook must still be there to hear it. From then on the API treats the webhook as gone (``live``),
while its queued deliveries are still made; ``prune_orphans`` deletes it, with its delivery log,
once nothing is left to deliver to it.
"""

from __future__ import annotations

import logging

from sqlalchemy import ColumnElement, and_, delete, not_, or_, select

from annota.core.db.tables import EventRecord, Organization, Project, Webhook, WebhookJob
from annota.core.queue import JobContext

logger = logging.getLogger(__name__)


def orphaned() -> ColumnElement[bool]:
    """Webhooks whose project or organization no longer exists."""
    project_gone = and_(
        Webhook.project_id.is_not(None), ~select(Project.id).where(Project.id == Webhook.project_id).exists()
    )
    organization_gone = and_(
        Webhook.organization_id.is_not(None),
        ~select(Organization.id).where(Organization.id == Webhook.organization_id).exists(),
    )
    return or_(project_gone, organization_gone)


def live() -> ColumnElement[bool]:
    """Webhooks whose project and organization (if any) still exist: the ones the API shows."""
    return not_(orphaned())


def _still_owed() -> ColumnElement[bool]:
    """Webhooks that may still get a delivery: one is queued (or being retried), or an event of
    their project or organization (its deletion, above all) has not been fanned out yet."""
    queued = select(WebhookJob.id).where(WebhookJob.webhook_id == Webhook.id).exists()
    # fan-out commits the queued jobs before it marks the event dispatched: whichever of the two
    # a reader sees, it sees that something is owed
    undispatched = (
        select(EventRecord.id)
        .where(
            EventRecord.dispatched.is_(False),
            or_(EventRecord.project_id == Webhook.project_id, EventRecord.org_id == Webhook.organization_id),
        )
        .exists()
    )
    return or_(queued, undispatched)


async def prune_orphans(ctx: JobContext) -> None:
    """The periodic ``webhooks.prune_orphans`` job: delete the orphaned webhooks nothing is owed
    to any more, in one statement; their delivery logs go with them (foreign key cascade)."""
    statement = (
        delete(Webhook)
        .where(orphaned(), not_(_still_owed()))
        .returning(Webhook.id)
        .execution_options(synchronize_session=False)
    )
    async with ctx.sessionmaker.begin() as session:
        pruned = len((await session.execute(statement)).all())
    if pruned:
        logger.info("deleted %d webhooks of deleted projects or organizations", pruned)


__all__ = ["live", "orphaned", "prune_orphans"]
