"""``POST /api/events``: the web UI's own events (analytics), kept in the event log.

Bounded three ways: events per request, bytes per event payload (400 naming the setting), and
requests per user per minute (429 with ``Retry-After``).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from annota.core.access import Resource
from annota.core.db.tables import User
from annota.core.errors import TooManyRequests
from annota.core.schemas.client_events import ClientEventsRead, ClientEventsWrite
from annota.core.services import client_events as service
from annota.runtime import web
from annota.runtime.rate_limit import RateLimiter


def _limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter | None = getattr(request.app.state, "client_events_limiter", None)
    if limiter is None:
        limiter = RateLimiter(web.state(request).settings.client_events_per_minute)
        request.app.state.client_events_limiter = limiter
    return limiter


@web.operation(
    "Send the web UI's own events",
    tags=["events"],
    request=ClientEventsWrite,
    response=ClientEventsRead,
    status=201,
)
async def create_client_events(request: Request) -> Response:
    who = web.require_user(request)
    await web.authorize(request, "send:events", Resource("events"))
    wait = _limiter(request).hit(who.user_id)
    if wait:
        raise TooManyRequests(
            f"Too many event reports: at most {_limiter(request).limit} a minute "
            f"(client_events_per_minute). Try again in {wait} s.",
            retry_after=wait,
        )
    batch = await web.read_json(request, ClientEventsWrite)
    settings = web.state(request).settings
    limits = service.Limits(settings.client_events_max_batch, settings.client_events_max_payload_bytes)
    async with web.transaction(request) as session:
        user = await session.get(User, who.user_id)
        org = who.organization
        sender = service.Sender(
            user_id=who.user_id or 0, username=who.username, email=user.email if user else "",
            org_id=org.id if org else None, org_slug=org.slug if org else None,
        )  # fmt: skip
        accepted = service.accept(batch, sender, limits)
        await service.store(session, accepted.events)
    return web.json_response(accepted, status_code=201)


routes = [
    ("/api/events", create_client_events, ["POST"]),
]
