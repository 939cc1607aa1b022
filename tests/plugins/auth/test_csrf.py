"""CSRF protection: cookie sessions must prove unsafe requests with ``X-CSRFToken`` (and a matching
``Origin`` when one is sent); header credentials are not ambient and skip the check."""

from __future__ import annotations

import base64

import pytest
from starlette.testclient import TestClient

from annota.testing import PASSWORD

CSRF_FAILED = "CSRF Failed: CSRF token missing or incorrect."


@pytest.fixture
def browser(make_user, annota_client: TestClient) -> TestClient:
    """A client holding alice's ``sessionid`` and ``csrftoken`` cookies, as a browser would."""
    make_user("alice")
    client = TestClient(annota_client.app, base_url="http://testserver")
    assert client.post("/api/auth/login", json={"username": "alice", "password": PASSWORD}).status_code == 200
    return client


def create_project(client: TestClient, **headers: str):
    return client.post("/api/projects", json={"name": "p"}, headers=headers)


def test_unsafe_request_without_the_header_is_refused(browser):
    response = create_project(browser)
    assert response.status_code == 403
    assert response.json() == {"detail": CSRF_FAILED}


def test_unsafe_request_with_a_wrong_header_is_refused(browser):
    assert create_project(browser, **{"X-CSRFToken": "forged"}).status_code == 403


def test_unsafe_request_with_the_token_and_own_origin_passes(browser):
    token = browser.cookies["csrftoken"]
    assert create_project(browser, **{"X-CSRFToken": token}).status_code == 201
    assert create_project(browser, **{"X-CSRFToken": token, "Origin": "http://testserver"}).status_code == 201


@pytest.mark.parametrize("origin", ["http://evil.example", "https://testserver", "null"])
def test_foreign_origin_is_refused_even_with_the_token(browser, origin):
    response = create_project(browser, **{"X-CSRFToken": browser.cookies["csrftoken"], "Origin": origin})
    assert response.status_code == 403
    assert "Origin checking failed" in response.json()["detail"]


def test_public_url_is_a_trusted_origin(browser, annota_settings):
    annota_settings.public_url = "https://annota.example.com"
    headers = {"X-CSRFToken": browser.cookies["csrftoken"], "Origin": "https://annota.example.com"}
    assert create_project(browser, **headers).status_code == 201


def test_safe_methods_need_no_token(browser):
    assert browser.get("/api/projects").status_code == 200


def test_header_credentials_skip_the_check(browser, annota_client):
    """A request with cookies *and* an Authorization header is judged by the header alone."""
    key = browser.post(
        "/api/auth/login",
        json={"username": "alice", "password": PASSWORD},
        headers={"X-CSRFToken": browser.cookies["csrftoken"]},
    ).json()["key"]
    basic = "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    pat = browser.post(
        "/api/auth/access_tokens", json={"name": "t"}, headers={"X-CSRFToken": browser.cookies["csrftoken"]}
    ).json()["value"]
    for authorization in (f"Token {key}", basic, f"Bearer {pat}"):
        assert create_project(browser, Authorization=authorization).status_code == 201, authorization


def test_a_stale_session_cookie_is_anonymous_not_a_csrf_error(annota_client):
    client = TestClient(annota_client.app, base_url="http://testserver", cookies={"sessionid": "stale"})
    assert create_project(client).status_code == 401
