"""``/api/schema`` and ``/api/docs``: a valid OpenAPI 3.0 document covering every route, the core's
and the plugins', and a self-contained page built from it."""

from __future__ import annotations

import re
from typing import Any

import msgspec
import pytest
from openapi_spec_validator import validate
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from annota.core import hookimpl
from annota.core.schemas.common import Paginated
from annota.runtime import web
from annota.runtime.openapi import documented_routes, openapi_document, operation_of


class Note(msgspec.Struct):
    id: int
    text: str
    #: a field named like a JSON Schema keyword must survive the 3.0 conversion untouched
    examples: list[str] = []
    parent: Note | None = None


class NoteWrite(msgspec.Struct):
    text: str


@web.operation(
    "List notes", tags=["notes"], response=Paginated[Note], paginated=True, query={"text": "contains"}
)
async def list_notes(request: Request) -> Response:
    return web.json_response({"count": 0, "next": None, "previous": None, "results": []})


@web.operation("Replace a note", tags=["notes"], request=NoteWrite, response=Note)
async def replace_note(request: Request) -> Response:
    return web.json_response(Note(id=request.path_params["id"], text="x"))


@web.operation("Download a note", tags=["notes"], responses={200: "application/zip"})
async def download_note(request: Request) -> Response:
    return Response(b"PK", media_type="application/zip")


class NotesPlugin:
    @hookimpl
    def register_routes(self, register: Any) -> None:
        register("/api/notes", list_notes)
        register("/api/notes/{id:int}", replace_note, methods=["PUT"])
        register("/api/notes/{name:str}/file", download_note)


@pytest.fixture
def annota_database_url(sqlite_database_url: str) -> str:
    return sqlite_database_url


@pytest.fixture
def annota_plugins() -> dict[str, Any]:
    return {"notes": NotesPlugin()}


@pytest.fixture
def schema(annota_client: TestClient) -> dict[str, Any]:
    response = annota_client.get("/api/schema")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document: dict[str, Any] = response.json()
    return document


def test_schema_is_a_valid_openapi_3_0_document(schema: dict[str, Any]) -> None:
    assert schema["openapi"].startswith("3.0.")
    validate(schema)  # raises on any violation of the OpenAPI 3.0 specification


def test_every_api_route_has_operation_metadata(annota_client: TestClient) -> None:
    """New endpoints cannot be undocumented: each needs ``@web.operation`` (core and plugins alike)."""
    undocumented = [
        f"{method} {path} ({getattr(endpoint, '__module__', '?')}.{getattr(endpoint, '__name__', endpoint)})"
        for path, method, endpoint in documented_routes(annota_client.app.routes)  # type: ignore[attr-defined]
        if path.startswith("/api/") and operation_of(endpoint, method) is None
    ]
    assert undocumented == []


def test_every_route_is_in_the_schema(annota_client: TestClient, schema: dict[str, Any]) -> None:
    routes = [route for route in annota_client.app.routes if isinstance(route, Route)]  # type: ignore[attr-defined]
    assert routes
    # files outside the API (the logo) are not operations of it
    for route in (route for route in routes if route.path.startswith("/api/")):
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path.rstrip("/") or "/")
        # HEAD and OPTIONS (DRF's metadata) come with every route, as in CVAT's schema
        for method in (route.methods or set()) - {"HEAD", "OPTIONS"}:
            assert method.lower() in schema["paths"][path], f"{method} {route.path} is missing"
    operation_ids = [op["operationId"] for item in schema["paths"].values() for op in item.values()]
    assert len(operation_ids) == len(set(operation_ids))


def test_plugin_routes_are_described_from_their_metadata(schema: dict[str, Any]) -> None:
    listing = schema["paths"]["/api/notes"]["get"]
    assert listing["summary"] == "List notes"
    assert listing["tags"] == ["notes"]
    params = {param["name"]: param for param in listing["parameters"]}
    assert set(params) == {"text", "page", "page_size", "sort", "search", "filter"}
    assert params["page"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
    assert params["text"] == {
        "name": "text",
        "in": "query",
        "required": False,
        "description": "contains",
        "schema": {"type": "string"},
    }
    page_schema = listing["responses"]["200"]["content"]["application/json"]["schema"]
    page_component = schema["components"]["schemas"][page_schema["$ref"].rsplit("/", 1)[1]]
    assert page_component["properties"]["results"]["items"] == {"$ref": "#/components/schemas/Note"}

    replace = schema["paths"]["/api/notes/{id}"]["put"]
    assert replace["parameters"] == [
        {
            "name": "id",
            "in": "path",
            "required": True,
            "schema": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
        }
    ]
    body = replace["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/NoteWrite"}
    assert set(replace["responses"]) == {"200", "400", "401", "403", "404", "429"}

    download = schema["paths"]["/api/notes/{name}/file"]["get"]
    assert download["parameters"][0]["schema"] == {"type": "string"}
    assert download["responses"]["200"]["content"] == {
        "application/zip": {"schema": {"type": "string", "format": "binary"}}
    }


def test_json_schema_is_converted_to_openapi_3_0(schema: dict[str, Any]) -> None:
    note = schema["components"]["schemas"]["Note"]
    assert note["required"] == ["id", "text"]
    assert note["properties"]["examples"] == {"type": "array", "items": {"type": "string"}, "default": []}
    assert note["properties"]["parent"] == {
        "allOf": [{"$ref": "#/components/schemas/Note"}],
        "nullable": True,
        "default": None,
    }
    project = schema["components"]["schemas"]["ProjectRead"]
    assert project["properties"]["guide_id"] == {
        "type": "integer",
        "nullable": True,
        "minimum": -(2**63),
        "maximum": 2**63 - 1,
    }


def test_core_path_parameters_are_integers(schema: dict[str, Any]) -> None:
    (param,) = schema["paths"]["/api/projects/{id}"]["get"]["parameters"]
    assert param == {
        "name": "id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
    }


def test_security_schemes_and_requirements(schema: dict[str, Any]) -> None:
    schemes = schema["components"]["securitySchemes"]
    assert schemes["basicAuth"] == {"type": "http", "scheme": "basic"}
    assert schemes["tokenAuth"]["in"] == "header" and schemes["tokenAuth"]["name"] == "Authorization"
    assert schemes["bearerAuth"]["scheme"] == "bearer"
    assert (schemes["sessionAuth"]["in"], schemes["sessionAuth"]["name"]) == ("cookie", "sessionid")
    assert (schemes["csrfAuth"]["in"], schemes["csrfAuth"]["name"]) == ("header", "X-CSRFToken")

    read = schema["paths"]["/api/projects/{id}"]["get"]["security"]
    write = schema["paths"]["/api/projects/{id}"]["patch"]["security"]
    assert {"sessionAuth": []} in read and {} not in read
    assert {"sessionAuth": [], "csrfAuth": []} in write and {"sessionAuth": []} not in write
    # anonymous callers are welcome on the server's about page
    assert {} in schema["paths"]["/api/server/about"]["get"]["security"]


def test_docs_page_is_self_contained_html(annota_client: TestClient, schema: dict[str, Any]) -> None:
    response = annota_client.get("/api/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    # nothing fetched from elsewhere: no scripts, no external stylesheets or images
    assert "<script" not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    for tag in ("notes", "projects", "server"):
        assert f'id="tag-{tag}"' in page
    for op in (schema["paths"]["/api/notes/{id}"]["put"], schema["paths"]["/api/projects"]["post"]):
        assert f'id="{op["operationId"]}"' in page
        assert op["summary"] in page
    assert '<span class="path">/api/notes/{id}</span>' in page
    assert "<code>page_size</code>" in page
    assert '<a href="#schema-NoteWrite">NoteWrite</a>' in page
    assert 'id="schema-ProjectRead"' in page
    assert '<a href="/api/schema">' in page


def test_document_is_built_from_the_routes_given() -> None:
    document = openapi_document(
        [Route("/api/notes", list_notes), Route("/api/notes/", list_notes, include_in_schema=False)]
    )
    assert list(document["paths"]) == ["/api/notes"]
    assert set(document["components"]["schemas"]) >= {"Note", "Detail"}


def test_settings_forms_find_their_components_by_cvat_name(annota_client: TestClient) -> None:
    # The web UI asks for ``/api/schema/?scheme=json`` and reads the settings forms' fields there.
    response = annota_client.get("/api/schema/", params={"scheme": "json", "org": ""})
    schemas = response.json()["components"]["schemas"]
    quality = schemas["QualitySettings"]["properties"]
    assert quality == schemas["QualitySettingsRead"]["properties"]
    assert {"iou_threshold", "oks_sigma", "target_metric"} <= quality.keys()
    consensus = schemas["ConsensusSettings"]["properties"]
    assert {"id", "iou_threshold"} <= consensus.keys()
