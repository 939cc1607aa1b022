"""Throttling of password guessing: per account and per client address, on the login endpoint and
HTTP Basic, shared by every API process, the same for unknown users and wrong passwords, and never
locking an account's owner out."""

from __future__ import annotations

import base64
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from annota.core.db.tables import LoginThrottle
from annota.core.services import attempt_budgets
from annota.plugins.auth.config import AuthConfig
from annota.runtime import housekeeping
from annota.runtime.app import create_app
from annota.runtime.settings import Settings
from annota.runtime.state import load_plugins
from annota.testing import PASSWORD

ATTACKER = "198.51.100.66"
OWNER = "203.0.113.10"
THROTTLED = "Too many failed login attempts. Try again in"


@pytest.fixture
def auth_config(annota_client: TestClient) -> AuthConfig:
    """The running app's ``[plugins.auth]`` configuration, read on every login: tests change it."""
    config: AuthConfig = annota_client.app.state.annota.plugins.config("auth")  # type: ignore[attr-defined]
    return config


@pytest.fixture
def from_address(annota_client: TestClient) -> Callable[[str], TestClient]:
    def make(address: str) -> TestClient:
        return TestClient(annota_client.app, base_url="http://testserver", client=(address, 40000))

    return make


def login(client: TestClient, username: str, password: str) -> Any:
    return client.post("/api/auth/login", json={"username": username, "password": password})


def basic(client: TestClient, username: str, password: str) -> Any:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return client.get("/api/users/self", headers={"Authorization": f"Basic {token}"})


def test_guessing_one_account_meets_429_with_retry_after(make_user, from_address) -> None:
    make_user("alice")
    attacker = from_address(ATTACKER)
    statuses = [login(attacker, "alice", f"guess-{i}").status_code for i in range(10)]
    assert statuses == [401] * 10
    # over the account's limit: this address may try once more, then must wait
    assert login(attacker, "alice", "guess-10").status_code == 401
    response = login(attacker, "alice", "guess-11")
    assert response.status_code == 429
    assert response.json()["detail"].startswith(THROTTLED)
    assert 1 <= int(response.headers["retry-after"]) <= 30
    # a throttled attempt is refused whatever the password: it is not even checked
    assert login(attacker, "alice", PASSWORD).status_code == 429


def test_unknown_users_and_wrong_passwords_get_the_same_answers(make_user, from_address) -> None:
    make_user("alice")
    answers = {}
    timings = {}
    for name, address in (("alice", "198.51.100.1"), ("nobody", "198.51.100.2")):
        client = from_address(address)
        seen = []
        elapsed = []
        for i in range(13):
            started = time.perf_counter()
            response = login(client, name, f"guess-{i}")
            elapsed.append(time.perf_counter() - started)
            seen.append((response.status_code, response.json(), response.headers.get("retry-after")))
        answers[name] = seen
        timings[name] = statistics.median(elapsed[:10])
    assert answers["alice"] == answers["nobody"]
    assert [status for status, _, _ in answers["alice"]] == [401] * 11 + [429] * 2
    # both pay for a password hash: no timing class tells them apart
    assert 1 / 3 < timings["alice"] / timings["nobody"] < 3, timings


def test_long_login_names_are_counted_too(from_address) -> None:
    attacker = from_address(ATTACKER)
    name = "x" * 5000
    statuses = [login(attacker, name, f"guess-{i}").status_code for i in range(12)]
    assert statuses == [401] * 11 + [429]
    # another name of the same length is another account
    assert login(attacker, "y" * 5000, "guess").status_code == 401


def test_parallel_guesses_cannot_overspend(make_user, from_address) -> None:
    make_user("alice")
    attacker = from_address(ATTACKER)
    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(lambda i: login(attacker, "alice", f"guess-{i}").status_code, range(40)))
    # ten for the account, one more for this address while the account is throttled
    assert Counter(statuses) == {401: 11, 429: 29}


def test_one_address_guessing_many_accounts_is_throttled(from_address, auth_config) -> None:
    auth_config.failed_logins_per_address = 5
    attacker = from_address(ATTACKER)
    assert [login(attacker, f"user{i}", "guess").status_code for i in range(5)] == [401] * 5
    response = login(attacker, "someone-else", "guess")
    assert response.status_code == 429 and int(response.headers["retry-after"]) <= 20
    # another address is not affected
    assert login(from_address("198.51.100.7"), "someone-else", "guess").status_code == 401


def test_the_owner_is_never_locked_out(make_user, from_address, auth_config) -> None:
    auth_config.throttled_account_retry_seconds = 1.0
    make_user("alice")
    attacker = from_address(ATTACKER)
    # a fresh client for each of the owner's logins: a session cookie would call for a CSRF token
    owner = lambda: from_address(OWNER)  # noqa: E731
    for i in range(12):
        login(attacker, "alice", f"guess-{i}")
    assert login(attacker, "alice", "guess").status_code == 429
    # the owner, from an address of their own, gets in at once
    assert login(owner(), "alice", PASSWORD).status_code == 200
    # which resets the account: the attacker is back to the account's limit, not past it
    assert login(attacker, "alice", "guess").status_code == 401
    for i in range(12):
        login(attacker, "alice", f"guess-{i}")
    # a mistyped password while the account is attacked costs the owner one short wait
    assert login(owner(), "alice", "typo").status_code == 401
    waiting = login(owner(), "alice", PASSWORD)
    assert waiting.status_code == 429 and waiting.headers["retry-after"] == "1"
    time.sleep(1.05)
    assert login(owner(), "alice", PASSWORD).status_code == 200


def test_failures_are_forgiven_over_time(make_user, from_address, auth_config) -> None:
    auth_config.failed_logins_per_account = 2
    auth_config.account_forgiveness_seconds = 3.0
    auth_config.throttled_account_retry_seconds = 60.0
    make_user("alice")
    attacker = from_address(ATTACKER)
    assert [login(attacker, "alice", f"g{i}").status_code for i in range(4)] == [401, 401, 401, 429]
    time.sleep(3.0)
    # one failure was forgiven: one more guess, then throttled again
    assert login(attacker, "alice", "g4").status_code == 401
    assert login(attacker, "alice", "g5").status_code == 429


def test_a_successful_login_resets_the_account(make_user, from_address) -> None:
    make_user("alice")
    client = from_address(OWNER)
    for i in range(9):
        assert login(client, "alice", f"guess-{i}").status_code == 401
    # (a client of its own: the session cookie would call for a CSRF token on the next logins)
    assert login(from_address(OWNER), "alice", PASSWORD).status_code == 200
    assert [login(client, "alice", f"again-{i}").status_code for i in range(11)] == [401] * 11
    assert login(client, "alice", "again").status_code == 429


def test_http_basic_is_throttled_too(make_user, from_address) -> None:
    make_user("alice")
    attacker, owner = from_address(ATTACKER), from_address(OWNER)
    statuses = [basic(attacker, "alice", f"guess-{i}").status_code for i in range(12)]
    assert statuses == [401] * 11 + [429]
    assert basic(attacker, "alice", "guess").headers["retry-after"]
    # the login endpoint and Basic share the budgets
    assert login(attacker, "alice", "guess").status_code == 429
    response = basic(owner, "alice", PASSWORD)
    assert response.status_code == 200 and response.json()["username"] == "alice"


@pytest.fixture
def second_process(annota_settings: Settings, annota_client: TestClient) -> Iterator[TestClient]:
    """Another app on the same database: a second API process, with engine and pool of its own."""
    with TestClient(
        create_app(annota_settings), base_url="http://testserver", client=(ATTACKER, 1)
    ) as client:
        yield client


def test_api_processes_share_the_counts(make_user, from_address, second_process) -> None:
    make_user("alice")
    first = from_address(ATTACKER)
    assert [login(first, "alice", f"a{i}").status_code for i in range(6)] == [401] * 6
    assert [login(second_process, "alice", f"b{i}").status_code for i in range(5)] == [401] * 5
    assert login(first, "alice", "c").status_code == 429
    assert login(second_process, "alice", "c").status_code == 429


def test_throttling_can_be_turned_off(make_user, from_address, auth_config) -> None:
    auth_config.throttle_logins = False
    make_user("alice")
    attacker = from_address(ATTACKER)
    assert {login(attacker, "alice", f"g{i}").status_code for i in range(15)} == {401}


def test_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNOTA_AUTH_FAILED_LOGINS_PER_ACCOUNT", "5")
    monkeypatch.setenv("ANNOTA_AUTH_THROTTLED_ACCOUNT_RETRY_SECONDS", "12.5")
    config = load_plugins(Settings()).config("auth")
    assert (config.failed_logins_per_account, config.throttled_account_retry_seconds) == (5, 12.5)
    assert (config.failed_logins_per_address, config.throttle_logins) == (30, True)


def test_housekeeping_forgets_throttles_that_have_run_out(annota_client: TestClient, run_async: Any) -> None:
    state = annota_client.app.state.annota  # type: ignore[attr-defined]
    budget = attempt_budgets.Budget(burst=3, interval=60)
    now = time.time()
    run_async(attempt_budgets.spend, state.sessionmaker, "account:old", budget, now - 3600)
    run_async(attempt_budgets.spend, state.sessionmaker, "account:recent", budget, now)
    run_async(housekeeping.prune, state.sessionmaker, state.storage, state.settings)

    async def keys() -> list[str]:
        async with state.sessionmaker() as session:
            return list(await session.scalars(select(LoginThrottle.key)))

    assert run_async(keys) == ["account:recent"]
