"""A short memory of who presented which credentials, so that a request does not pay again for the
lookups (and, for HTTP Basic, the password hash) a request with the same credentials just paid for.

Only authentication is remembered: authorization is still asked on every request. An entry lives
a few seconds at most (``identity_cache_seconds``), never past its token's or session's expiry,
and is keyed by a keyed digest of the credentials themselves, so a wrong password or an unknown
token never matches one. Whenever this process changes a user, a membership, an organization, a
login token, a session or an access token (logout, revocation, deactivation, a new password, a new
role), every entry is forgotten at once: SQLAlchemy's events bump a generation number when such a
change is flushed and again when it is committed, and entries of an older generation are void.
Other processes' changes are seen when the entries expire.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from annota.core.access import Identity
from annota.core.db.tables import AccessToken, AuthToken, Membership, Organization, User
from annota.core.db.tables import Session as LoginSession

#: what an identity depends on: a change to any of these forgets every remembered identity
WATCHED: tuple[type, ...] = (User, Membership, Organization, AuthToken, LoginSession, AccessToken)
_WATCHED_MAPPED = frozenset(WATCHED)
#: a cache that grows past this many entries starts afresh (many distinct callers at once)
MAX_ENTRIES = 10_000
_CHANGED = "annota_identities_changed"

_generation = 0


def generation() -> int:
    """Read before loading an identity: one stored with an older number is never used."""
    return _generation


def forget_all() -> None:
    global _generation
    _generation += 1


@dataclass(frozen=True, slots=True)
class Entry:
    identity: Identity
    generation: int
    #: ``time.monotonic()`` after which the entry is void
    expires: float


class IdentityCache:
    """One running app's remembered identities, by credential digest."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.entries: dict[str, Entry] = {}

    def get(self, key: str) -> Identity | None:
        entry = self.entries.get(key)
        if entry is None:
            return None
        if entry.generation != _generation or entry.expires <= time.monotonic():
            self.entries.pop(key, None)
            return None
        return entry.identity

    def put(self, key: str, identity: Identity, loaded_at: int, valid_for: float | None = None) -> None:
        """Remember ``identity``, loaded from the database at generation ``loaded_at``, for the
        cache's lifetime or ``valid_for`` seconds (what is left of its token or session) if less."""
        seconds = self.seconds if valid_for is None else min(self.seconds, valid_for)
        if seconds <= 0 or loaded_at != _generation:
            return
        if len(self.entries) >= MAX_ENTRIES:
            self.entries.clear()
        self.entries[key] = Entry(identity, loaded_at, time.monotonic() + seconds)


_caches: dict[int, tuple[weakref.ref[Any], IdentityCache]] = {}


def for_app(app: Any, seconds: float) -> IdentityCache:
    """The cache of the running app ``app`` (its state object): apps never share identities, since
    the same credentials name different users in different databases."""
    known = _caches.get(id(app))
    if known is not None and known[0]() is app:
        return known[1]
    cache = IdentityCache(seconds)
    _caches[id(app)] = (weakref.ref(app), cache)
    return cache


# --- what forgets: changes to the watched tables, through the ORM, in this process ---------------


def _touches(objects: Any) -> bool:
    return any(isinstance(obj, WATCHED) for obj in objects)


def _after_flush(session: Session, _context: UOWTransaction) -> None:
    # the session still lists what it has just flushed
    if _touches(session.new) or _touches(session.dirty) or _touches(session.deleted):
        session.info[_CHANGED] = True
        forget_all()


def _on_execute(state: ORMExecuteState) -> None:
    # bulk ``update(...)``/``delete(...)``/``insert(...)`` statements bypass the unit of work
    if state.is_select:
        return
    if any(mapper.class_ in _WATCHED_MAPPED for mapper in state.all_mappers):
        state.session.info[_CHANGED] = True
        forget_all()


def _after_commit(session: Session) -> None:
    # again once committed: an identity loaded between the flush and the commit saw the old rows
    if session.info.pop(_CHANGED, False):
        forget_all()


def _after_rollback(session: Session) -> None:
    session.info.pop(_CHANGED, None)


for _name, _listener in (
    ("after_flush", _after_flush),
    ("do_orm_execute", _on_execute),
    ("after_commit", _after_commit),
    ("after_rollback", _after_rollback),
):
    if not event.contains(Session, _name, _listener):
        event.listen(Session, _name, _listener)
