"""``annota invitations create``: the key it prints lets the invitee join through the API, and the
policy judges the inviter as it does on the web."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner, Result

from annota.runtime.cli import main


@pytest.fixture
def annota_database_url(sqlite_database_url: str) -> str:
    # the command reads and writes through the same services as the API: one database suffices
    return sqlite_database_url


def test_invite_from_the_command_line(make_user: Any, annota_settings: Any) -> None:
    alice = make_user("alice", email="alice@example.com")
    ivan = make_user("ivan", email="ivan@example.com")
    walt = make_user("walt", email="walt@example.com")
    assert alice.post("/api/organizations", json={"slug": "acme"}).status_code == 201
    env = {"ANNOTA_DATABASE_URL": annota_settings.database_url, "ANNOTA_DATA_DIR": annota_settings.data_dir}

    def invite(*args: str) -> Result:
        return CliRunner(env=env).invoke(main, ["invitations", "create", *args])

    created = invite("--org", "acme", "--email", "ivan@example.com", "--role", "supervisor", "--as", "alice")
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    accepted = ivan.post(f"/api/invitations/{key}/accept")
    assert accepted.status_code == 200 and accepted.json() == {"organization_slug": "acme"}
    roles = {
        m["user"]["username"]: m["role"]
        for m in alice.get("/api/memberships", params={"org": "acme"}).json()["results"]
    }
    assert roles == {"alice": "owner", "ivan": "supervisor"}

    # a supervisor invites nobody; unknown people, organizations and e-mails are named
    refused = invite("--org", "acme", "--email", "walt@example.com", "--as", "ivan")
    assert refused.exit_code != 0 and "may not invite" in refused.output
    assert "nobody" in invite("--org", "acme", "--email", "walt@example.com", "--as", "nobody").output
    assert "No organization" in invite("--org", "nope", "--email", "walt@example.com", "--as", "alice").output
    unknown = invite("--org", "acme", "--email", "who@example.com", "--as", "alice")
    assert unknown.exit_code != 0 and "email" in unknown.output
    assert walt.get("/api/invitations").json()["count"] == 0
