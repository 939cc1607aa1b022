"""Security headers: every answer tells browsers not to sniff, frame or leak it; each path gets its
Content-Security-Policy; authenticated API answers are not cached (media keeps its own caching);
cookies are Secure behind an https public URL."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from http.cookies import SimpleCookie
from typing import Any

import pytest
from starlette.testclient import TestClient

from annota.runtime.security_headers import API_CSP, DOCS_CSP, UI_CSP, policy_for
from annota.runtime.settings import Settings
from annota.testing import PASSWORD
from tests.media import make_jpeg


def _directives(csp: str) -> dict[str, list[str]]:
    parsed: dict[str, list[str]] = {}
    for directive in csp.split(";"):
        name, *values = directive.split()
        parsed[name] = values
    return parsed


def _assert_common(headers: Any) -> None:
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "same-origin"
    assert _directives(headers["content-security-policy"])["frame-ancestors"] == ["'none'"]
    assert "server" not in headers


def test_every_api_answer_has_the_headers_errors_included(
    annota_client: TestClient, user_client: Any
) -> None:
    for response in (
        annota_client.get("/api/server/about"),
        annota_client.get("/api/users/self"),  # 401
        annota_client.get("/api/no/such/thing"),  # 404 from the router
        annota_client.get("/api/tasks", headers={"Authorization": "Token wrong"}),  # 401 from authentication
        user_client.get("/api/users/self"),
    ):
        _assert_common(response.headers)
        assert _directives(response.headers["content-security-policy"])["default-src"] == ["'none'"]


def test_api_answers_are_not_stored(annota_client: TestClient, user_client: Any, make_user: Any) -> None:
    assert user_client.get("/api/users/self").headers["cache-control"] == "no-store"
    assert user_client.get("/api/tasks").headers["cache-control"] == "no-store"
    # anonymous answers too: the login's carries a token
    make_user("alice")
    login = annota_client.post("/api/auth/login", json={"username": "alice", "password": PASSWORD})
    assert login.status_code == 200 and login.headers["cache-control"] == "no-store"
    # an endpoint's own choice stands
    assert annota_client.get("/api/auth/rules").headers["cache-control"] == "no-cache"


def test_media_keeps_its_own_caching(user_client: Any, make_media_task: Callable[..., int]) -> None:
    task_id = make_media_task(user_client, [("a.jpg", make_jpeg())])
    for kind in ("frame", "chunk"):
        response = user_client.get(f"/api/tasks/{task_id}/data", params={"type": kind, "number": 0})
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "private, max-age=3600"
        _assert_common(response.headers)


def test_the_api_docs_page_allows_only_its_own_style_sheet(annota_client: TestClient) -> None:
    response = annota_client.get("/api/docs")
    assert response.status_code == 200
    _assert_common(response.headers)
    csp = response.headers["content-security-policy"]
    assert csp == DOCS_CSP and "unsafe" not in csp
    directives = _directives(csp)
    assert directives["default-src"] == ["'none'"] and "script-src" not in directives
    # what the page loads: one inline style sheet (whose hash the policy names) and links, nothing else
    page = response.text
    styles = re.findall(r"<style>(.*?)</style>", page, re.S)
    assert len(styles) == 1
    digest = base64.b64encode(hashlib.sha256(styles[0].encode()).digest()).decode()
    assert directives["style-src"] == [f"'sha256-{digest}'"]
    assert not re.search(r"<script|<img|<link|<iframe| style=| on[a-z]+=", page, re.I)


def test_the_ui_path_gets_a_policy_a_cvat_ui_build_runs_under(annota_client: TestClient) -> None:
    response = annota_client.get("/tasks/1")
    _assert_common(response.headers)
    directives = _directives(response.headers["content-security-policy"])
    assert directives["script-src"] == ["'self'", "'wasm-unsafe-eval'"]
    assert "'unsafe-inline'" in directives["style-src"]
    # the web fonts CVAT's index.html links
    assert "https://fonts.googleapis.com" in directives["style-src"]
    assert "https://fonts.gstatic.com" in directives["font-src"]
    assert {"data:", "blob:"} <= set(directives["img-src"])
    assert "blob:" in directives["worker-src"]
    assert directives["connect-src"] == ["'self'", "ws://testserver", "wss://testserver"]
    assert directives["object-src"] == ["'none'"]
    # a Host that is not a plain host name is left out of the policy rather than written into it
    odd = annota_client.get("/", headers={"Host": "evil; script-src *"})
    assert _directives(odd.headers["content-security-policy"])["connect-src"] == ["'self'"]


def test_policies_are_chosen_by_longest_prefix() -> None:
    assert policy_for("/").content_security_policy == UI_CSP
    assert policy_for("/index.html").content_security_policy == UI_CSP
    assert policy_for("/api/tasks").content_security_policy == API_CSP
    assert policy_for("/api/docs").content_security_policy == DOCS_CSP


@pytest.fixture
def https_public_url(annota_settings: Settings) -> Settings:
    annota_settings.public_url = "https://annota.example.com"
    return annota_settings


def test_cookies_are_secure_and_https_is_kept_behind_an_https_public_url(
    https_public_url: Settings, annota_client: TestClient, make_user: Callable[..., Any]
) -> None:
    make_user("alice")
    response = annota_client.post("/api/auth/login", json={"username": "alice", "password": PASSWORD})
    assert response.status_code == 200, response.text
    cookies = SimpleCookie(", ".join(response.headers.get_list("set-cookie")))
    assert set(cookies) == {"csrftoken", "sessionid"}
    assert all(morsel["secure"] for morsel in cookies.values())
    assert response.headers["strict-transport-security"] == "max-age=31536000"


def test_plain_http_sets_no_secure_flag_and_no_hsts(annota_client: TestClient, make_user: Any) -> None:
    make_user("alice")
    response = annota_client.post("/api/auth/login", json={"username": "alice", "password": PASSWORD})
    cookies = SimpleCookie(", ".join(response.headers.get_list("set-cookie")))
    assert not any(morsel["secure"] for morsel in cookies.values())
    assert "strict-transport-security" not in response.headers
