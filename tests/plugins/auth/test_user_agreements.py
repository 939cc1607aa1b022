"""``GET /api/user-agreements`` and registering with CVAT's ``confirmations``."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from annota.core.schemas.user_agreements import UserAgreement
from annota.runtime.settings import Settings, load_settings

TERMS = UserAgreement(name="terms", display_text="Terms of use", url="https://example.com/terms",
                      required=True, text_prefix="I accept the")  # fmt: skip
NEWS = UserAgreement(name="news", display_text="the newsletter", url="https://example.com/news")


@pytest.fixture
def anonymous(annota_client: TestClient, annota_settings: Settings) -> TestClient:
    annota_settings.allow_registration = True  # the test client's address is not a loopback one
    return TestClient(annota_client.app, base_url="http://testserver")


def register(client: TestClient, **fields: Any) -> Any:
    body = {"username": "carol", "password1": "long enough pw", "password2": "long enough pw", **fields}
    return client.post("/api/auth/register", json=body)


def test_no_agreements_by_default(anonymous: TestClient) -> None:
    response = anonymous.get("/api/user-agreements")
    assert response.status_code == 200 and response.json() == []
    assert register(anonymous).status_code == 201


def test_required_agreements_must_be_accepted(anonymous: TestClient, annota_settings: Settings) -> None:
    annota_settings.user_agreements = [TERMS, NEWS]
    listed = anonymous.get("/api/user-agreements").json()
    assert listed == [
        {"name": "terms", "required": True, "textPrefix": "I accept the", "url": "https://example.com/terms",
         "urlDisplayText": "Terms of use", "value": False},
        {"name": "news", "required": False, "textPrefix": "", "url": "https://example.com/news",
         "urlDisplayText": "the newsletter", "value": False},
    ]  # fmt: skip
    for confirmations in ([], [{"name": "terms", "value": False}, {"name": "news", "value": True}]):
        refused = register(anonymous, confirmations=confirmations)
        assert refused.status_code == 400
        assert refused.json() == {"confirmations": ["These agreements must be accepted to register: terms."]}
    yes = {"name": "terms", "value": True}
    unknown = register(anonymous, confirmations=[yes, {"name": "x", "value": True}])
    assert unknown.status_code == 400 and "x" in unknown.json()["confirmations"][0]
    accepted = register(anonymous, confirmations=[yes, {"name": "news", "value": False}])
    assert accepted.status_code == 201, accepted.text


def test_agreements_come_from_the_config_file(tmp_path: Any) -> None:
    config = tmp_path / "annota.toml"
    table = '[[user_agreements]]\nname = "terms"\nurl = "https://e.com/t"\n'
    config.write_text(table + 'display_text = "Terms"\nrequired = true\n')
    settings = load_settings(str(config), environ={})
    assert settings.user_agreements == [
        UserAgreement(name="terms", display_text="Terms", url="https://e.com/t", required=True)
    ]
    config.write_text(table)
    with pytest.raises(Exception, match="display_text"):
        load_settings(str(config), environ={})
