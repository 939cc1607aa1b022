"""Throttling of password guessing, for every way a password is checked (``POST /api/auth/login``,
HTTP Basic on any request).

Three budgets of failed logins, kept in the database (``core.services.attempt_budgets``) so that
every API process shares them, whatever the deployment:

- per client address (``failed_logins_per_address``, one forgiven every
  ``address_forgiveness_seconds``): one machine cannot guess at many accounts;
- per account (``failed_logins_per_account``, one forgiven every ``account_forgiveness_seconds``):
  many machines cannot guess at one account faster than that, once its burst is spent;
- per (account, address) while the account is over its limit: each address may still try the
  account once every ``throttled_account_retry_seconds``. So whoever attacks an account never
  locks its owner out: from an address that is not itself throttled, the right password works at
  once, or after at most that delay if the owner has just mistyped.

An attempt is counted before the password is checked, so parallel guesses cannot slip through
between a check and a count; a successful login gives the address its attempt back and resets the
account. A throttled attempt is answered 429 with ``Retry-After`` without checking the password.
Accounts are keyed by the login name as typed (lower-cased), never by whether it exists, so an
unknown user and a wrong password get the same answers, in the same time.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

from starlette.requests import Request

from annota.core.errors import TooManyRequests
from annota.core.services import attempt_budgets
from annota.core.services.attempt_budgets import Budget, Sessionmaker
from annota.plugins.auth.config import AuthConfig
from annota.runtime import web

PLUGIN = "auth"
THROTTLED = "Too many failed login attempts. Try again in {seconds} seconds."


@dataclass(frozen=True)
class Attempt:
    """One admitted password check; ``succeeded()`` once the password was right."""

    sessionmaker: Sessionmaker
    address_key: str
    account_key: str
    pair_key: str
    address_budget: Budget

    async def succeeded(self) -> None:
        await attempt_budgets.give_back(self.sessionmaker, self.address_key, self.address_budget)
        await attempt_budgets.reset(self.sessionmaker, self.account_key, self.pair_key)
        await attempt_budgets.prune(self.sessionmaker, time.time())


def _bounded(name: str, length: int) -> str:
    """``name``, or its digest when longer than ``length``: keys must fit their column."""
    if len(name) <= length:
        return name
    return "sha256:" + hashlib.sha256(name.encode(errors="surrogatepass")).hexdigest()


def _refuse(wait: float) -> TooManyRequests:
    seconds = max(math.ceil(wait), 1)
    return TooManyRequests(THROTTLED.format(seconds=seconds), retry_after=seconds)


async def admit(request: Request, login: str) -> Attempt | None:
    """Count a password check for ``login`` from the request's client, or raise 429. ``None``
    when throttling is off."""
    config: AuthConfig = web.state(request).plugins.config(PLUGIN)
    if not config.throttle_logins:
        return None
    sessionmaker: Sessionmaker = web.state(request).sessionmaker
    # behind a trusted proxy (``annota serve`` trusts X-Forwarded-For from loopback) this is the client
    address = _bounded(request.client.host if request.client else "unknown", 64)
    account = _bounded(login.strip().lower(), 200)
    attempt = Attempt(
        sessionmaker,
        address_key=f"address:{address}",
        account_key=f"account:{account}",
        pair_key=f"pair:{account}|{address}",
        address_budget=Budget(config.failed_logins_per_address, config.address_forgiveness_seconds),
    )
    now = time.time()
    wait = await attempt_budgets.spend(sessionmaker, attempt.address_key, attempt.address_budget, now)
    if wait:
        raise _refuse(wait)
    account_budget = Budget(config.failed_logins_per_account, config.account_forgiveness_seconds)
    if await attempt_budgets.spend(sessionmaker, attempt.account_key, account_budget, now):
        # the account is under attack: this address may still try it, at a slow pace
        pair_budget = Budget(1, config.throttled_account_retry_seconds)
        wait = await attempt_budgets.spend(sessionmaker, attempt.pair_key, pair_budget, now)
        if wait:
            raise _refuse(wait)
    return attempt
