"""``annota invitations create``: invite a registered user into an organization from the server's
shell, acting as one of its users and judged by the same policy as ``POST /api/invitations``.
Useful to bootstrap an organization before anyone uses the web API, or from scripts."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from annota.runtime.settings import Settings


@click.group("invitations")
def invitations() -> None:
    """Invite users into organizations."""


@invitations.command("create")
@click.option("--org", "slug", required=True, help="The organization's slug.")
@click.option("--email", required=True, help="The e-mail of the registered user to invite.")
@click.option(
    "--role",
    type=click.Choice(["worker", "supervisor", "maintainer"]),
    default="worker",
    show_default=True,
)
@click.option(
    "--as", "inviter", required=True, metavar="USERNAME", help="Who invites (an owner or maintainer)."
)
@click.pass_context
def invitations_create(ctx: click.Context, slug: str, email: str, role: str, inviter: str) -> None:
    """Invite a user and print the invitation's key (the invitee accepts it with
    ``POST /api/invitations/{key}/accept``)."""
    from annota.runtime.cli import Context, run

    settings = ctx.find_object(Context).settings()  # type: ignore[union-attr]
    click.echo(run(invite(settings, slug=slug, email=email, role=role, inviter=inviter)))


async def invite(settings: Settings, *, slug: str, email: str, role: str, inviter: str) -> str:
    """Create the invitation as ``inviter`` would through the API; returns its key."""
    # the server stack loads only when the command runs: `annota --help` and the conversion
    # commands start without it
    from sqlalchemy import select

    from annota.core.db.tables import User
    from annota.core.errors import PermissionDenied, ValidationError
    from annota.core.services import events as event_service
    from annota.core.services import invitations as service
    from annota.core.services import organization_context
    from annota.core.services import users as user_service
    from annota.runtime.state import close_state, open_state

    state = await open_state(settings)
    try:
        await state.plugins.call_all("startup", app=state)
        try:
            async with state.sessionmaker.begin() as session:
                user = await session.scalar(select(User).where(User.username == inviter))
                if user is None or not user.is_active:
                    raise ValidationError.for_field("as", f"No active user is called {inviter!r}.")
                memberships = await organization_context.memberships_of(session, user.id)
                organization = await organization_context.resolve(
                    session,
                    slug=organization_context.check_slug(slug, "org"),
                    org_id=None,
                    memberships=memberships,
                    is_admin=user.is_superuser or user.privilege == "admin",
                )
                who = replace(
                    user_service.identity_for(user, "cli"),
                    organization=organization,
                    organization_specified=True,
                    memberships=memberships,
                )
                service.check_role(role)
                decision = await state.plugins.first_result(
                    "authorize",
                    identity=who,
                    scope="create",
                    resource=service.creation_resource(user.id, organization.id, role, None),
                    app=state,
                )
                if getattr(decision, "allow", decision) is not True:
                    raise PermissionDenied(f"{inviter} may not invite a {role} into {organization.slug!r}.")
                invitee = await service.invitee_by_email(session, email)
                invitation, membership, key = await service.create(
                    session, user.id, organization.id, invitee, role
                )
                (shown,) = await service.read_many(session, [invitation], settings.public_url)
                await event_service.record(
                    session, "create:invitation", "invitation", shown, resource_id=membership.id,
                    user_id=user.id, base_url=settings.public_url, org_id=organization.id,
                )  # fmt: skip
        finally:
            await state.plugins.call_all("shutdown", app=state)
    finally:
        await close_state(state)
    return key
