"""The OpenAPI 3.0 document of a running server, built from its live route table.

Every route, the core's and the plugins' alike, is described from the metadata
``annota.runtime.web.operation`` attaches to its endpoint, and request and response bodies from
their msgspec types, so the document cannot drift from the code. ``render_docs`` turns the same
document into a self-contained HTML page (no scripts, nothing fetched from elsewhere).

An operation's ``responses`` map a status code to a msgspec-compatible type (a JSON body), to
``None`` (no body) or to a media-type string such as ``"application/zip"`` (a file).
"""

from __future__ import annotations

import html
import http
import re
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec
from starlette.routing import BaseRoute, Route

from annota.core import CVAT_COMPATIBLE_VERSION, __version__
from annota.core.bounds import INT4_MAX, INT8_MAX, INT8_MIN
from annota.core.schemas.common import Detail, RqId
from annota.runtime.web import Operation

OPENAPI_VERSION = "3.0.3"
REF_PREFIX = "#/components/schemas/"
JSON = "application/json"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "basicAuth": {"type": "http", "scheme": "basic"},
    "tokenAuth": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": 'The key handed out at login, sent as "Authorization: Token <key>".',
    },
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": 'A personal access token, sent as "Authorization: Bearer <token>".',
    },
    "sessionAuth": {"type": "apiKey", "in": "cookie", "name": "sessionid"},
    "csrfAuth": {
        "type": "apiKey",
        "in": "header",
        "name": "X-CSRFToken",
        "description": "The csrftoken cookie's value: required with sessionAuth on unsafe methods.",
    },
}

#: Starlette path convertors as OpenAPI parameter schemas.
CONVERTOR_SCHEMAS: dict[str, dict[str, Any]] = {
    "int": {"type": "integer", "minimum": 0, "maximum": INT4_MAX},
    "int64": {"type": "integer", "format": "int64", "minimum": 0, "maximum": INT8_MAX},
    "float": {"type": "number"},
    "uuid": {"type": "string", "format": "uuid"},
    "str": {"type": "string"},
    "path": {"type": "string"},
}


def query_parameter(name: str, description: str, type_: str = "string") -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": type_},
    }


PAGINATION_PARAMETERS: list[dict[str, Any]] = [
    {
        **query_parameter("page", "A page number within the paginated result set.", "integer"),
        "schema": {"type": "integer", "minimum": 1, "maximum": INT4_MAX},
    },
    query_parameter("page_size", "Number of results to return per page, or `all`."),
    query_parameter("sort", "Comma-separated fields to order by; a leading `-` reverses one."),
    query_parameter("search", "Case-insensitive text to look for in the searchable fields."),
    query_parameter("filter", 'A JSON-logic rule, e.g. `{"and":[{"==":[{"var":"name"},"x"]}]}`.'),
]

#: a 400's body: ``{"detail": message}``, DRF's ``{field: [messages]}``, or the bare list of
#: messages DRF answers for a ``ValidationError`` raised outside a serializer's fields
FieldErrors = dict[str, str | list[str]] | list[str]

_PATH_PARAMETER = re.compile(r"\{(?P<name>\w+)(?::(?P<convertor>\w+))?\}")


def default_info() -> dict[str, Any]:
    return {
        "title": "annota",
        "version": f"{CVAT_COMPATIBLE_VERSION}+annota.{__version__}",
        "description": "A CVAT-compatible annotation server built from plugins.",
    }


def operation_of(endpoint: Any, method: str) -> Operation | None:
    """The ``web.operation`` metadata of a function endpoint, or of a class endpoint's method."""
    found = getattr(endpoint, "__annota_operation__", None)
    if found is None and isinstance(endpoint, type):
        found = getattr(getattr(endpoint, method.lower(), None), "__annota_operation__", None)
    return found if isinstance(found, Operation) else None


def documented_routes(routes: Iterable[BaseRoute]) -> list[tuple[str, str, Any]]:
    """``(path, method, endpoint)`` for every route the schema describes (HEAD comes with GET)."""
    found = []
    for route in routes:
        if isinstance(route, Route) and route.include_in_schema:
            for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
                found.append((route.path, method, route.endpoint))
    return found


# CVAT's web UI reads these components by CVAT's name from the served schema (the field
# descriptions of its quality and consensus settings forms); without them those pages fail.
CVAT_SCHEMA_NAMES = {
    "QualitySettings": "QualitySettingsRead",
    "ConsensusSettings": "ConsensusSettingsRead",
}


def openapi_document(routes: Iterable[BaseRoute], info: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The OpenAPI document for ``routes`` (a Starlette app's ``app.routes``)."""
    entries = documented_routes(routes)
    body_types: list[Any] = [Detail, FieldErrors]
    for _, method, endpoint in entries:
        op = operation_of(endpoint, method)
        if op is not None:
            body_types += [t for t in (op.request, *op.responses.values()) if _is_body_type(t)]
    unique_types = list(dict.fromkeys(body_types))
    schemas, components = msgspec.json.schema_components(unique_types, ref_template=REF_PREFIX + "{name}")
    schema_of = {t: _to_openapi30(schema) for t, schema in zip(unique_types, schemas, strict=True)}

    paths: dict[str, dict[str, Any]] = {}
    operation_ids: set[str] = set()
    tags: set[str] = set()
    for path, method, endpoint in entries:
        op = operation_of(endpoint, method)
        document = _operation(path, method, endpoint, op, schema_of)
        document["operationId"] = _unique(document["operationId"], method, operation_ids)
        tags.update(document.get("tags", ()))
        paths.setdefault(_PATH_PARAMETER.sub(r"{\g<name>}", path), {})[method.lower()] = document

    _link_created_objects(paths)
    component_schemas = {name: _to_openapi30(schema) for name, schema in sorted(components.items())}
    for alias, name in CVAT_SCHEMA_NAMES.items():
        if name in component_schemas:
            component_schemas.setdefault(alias, component_schemas[name])
    return {
        "openapi": OPENAPI_VERSION,
        "info": dict(info or default_info()),
        "paths": paths,
        "tags": [{"name": tag} for tag in sorted(tags)],
        "components": {
            "schemas": component_schemas,
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


def _link_created_objects(paths: Mapping[str, dict[str, Any]]) -> None:
    """The id a ``POST /api/things`` answers with (201) leads to ``/api/things/{id}``'s operations:
    OpenAPI links, which clients and stateful testers follow from one call to the next."""
    for path, methods in paths.items():
        created = methods.get("post", {}).get("responses", {}).get("201")
        item = paths.get(f"{path}/{{id}}")
        if created is None or item is None or JSON not in created.get("content", {}):
            continue
        created["links"] = {
            operation["operationId"]: {
                "operationId": operation["operationId"],
                "parameters": {"id": "$response.body#/id"},
            }
            for operation in item.values()
        }


def _is_body_type(value: Any) -> bool:
    return value is not None and not isinstance(value, str)


def _unique(operation_id: str, method: str, taken: set[str]) -> str:
    # two plugins may well name their endpoints alike; operation ids must still be unique
    candidate, number = operation_id, 1
    while candidate in taken:
        number += 1
        candidate = f"{operation_id}_{method.lower()}" if number == 2 else f"{operation_id}_{number}"
    taken.add(candidate)
    return candidate


def _operation(
    path: str, method: str, endpoint: Any, op: Operation | None, schema_of: Mapping[Any, Any]
) -> dict[str, Any]:
    name = getattr(endpoint, "__name__", type(endpoint).__name__)
    if op is None:
        # still listed, so that nothing the server answers is invisible; a test refuses this case
        summary = (endpoint.__doc__ or name).strip().splitlines()[0]
        return {"operationId": name, "summary": summary, "responses": {"200": {"description": "OK"}}}

    parameters = [
        {
            "name": match["name"],
            "in": "path",
            "required": True,
            "schema": CONVERTOR_SCHEMAS.get(match["convertor"] or "str", {"type": "string"}),
        }
        for match in _PATH_PARAMETER.finditer(path)
    ]
    parameters += [query_parameter(param, description) for param, description in op.query.items()]
    if op.paginated:
        parameters += PAGINATION_PARAMETERS

    document: dict[str, Any] = {"operationId": name, "summary": op.summary}
    if op.tags:
        document["tags"] = list(op.tags)
    if parameters:
        document["parameters"] = parameters
    if op.request is not None:
        document["requestBody"] = {"required": True, "content": _content(op.request, schema_of)}

    responses: dict[int, Any] = dict(op.responses)
    # what the host itself answers, whatever the endpoint: errors are {"detail": ...}; any query
    # string may hold text no database stores (400), and credentials are checked where none are
    # needed too (401), as is the organization a request names (403); failed password logins,
    # Basic auth on any request included, are throttled (429)
    if responses.get(400) in (None, Detail):
        responses[400] = FieldErrors
    if responses.get(202) is RqId:
        # ``start_request`` refuses a second one while the same request is still under way
        responses.setdefault(409, Detail)
    responses.setdefault(401, Detail)
    responses.setdefault(403, Detail)
    responses.setdefault(429, Detail)
    if "{" in path or op.paginated:
        # no such object, or "Invalid page."
        responses.setdefault(404, Detail)
    document["responses"] = {
        str(status): {
            "description": _phrase(status),
            **({"content": _content(body, schema_of)} if body else {}),
        }
        for status, body in sorted(responses.items())
    }
    document["security"] = _security(method, op.anonymous)
    return document


def _content(body: Any, schema_of: Mapping[Any, Any]) -> dict[str, Any]:
    if isinstance(body, str):
        binary = {} if body.startswith("text/") else {"format": "binary"}
        return {body: {"schema": {"type": "string", **binary}}}
    return {JSON: {"schema": schema_of[body]}}


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return str(status)


def _security(method: str, anonymous: bool) -> list[dict[str, list[str]]]:
    session: dict[str, list[str]] = (
        {"sessionAuth": []} if method in SAFE_METHODS else {"sessionAuth": [], "csrfAuth": []}
    )
    requirements: list[dict[str, list[str]]] = [
        {"basicAuth": []},
        {"tokenAuth": []},
        {"bearerAuth": []},
        session,
    ]
    # an empty requirement: the operation answers anonymous callers too
    return [{}, *requirements] if anonymous else requirements


def _to_openapi30(schema: Mapping[str, Any]) -> dict[str, Any]:
    """msgspec writes JSON Schema 2020-12; OpenAPI 3.0 spells a few things its own way."""
    result = _without_null_unions(schema)
    # only keywords hold subschemas: a property may well be called "examples" or "const"
    for key, value in list(result.items()):
        if key == "properties":
            result[key] = {name: _to_openapi30(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            result[key] = _to_openapi30(value)
        elif key in ("allOf", "anyOf", "oneOf", "prefixItems"):
            result[key] = [_to_openapi30(sub) for sub in value]
    if result.get("required") == []:
        del result["required"]
    if result.get("type") == "null":
        del result["type"]
        result["nullable"] = True
    if "const" in result:
        result["enum"] = [result.pop("const")]
    examples = result.pop("examples", None)
    if examples:
        result["example"] = examples[0]
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        value = result.get(bound)
        if isinstance(value, int | float) and not isinstance(value, bool):
            result.update({limit: value, bound: True})
    if "prefixItems" in result:
        # 3.0 has no tuples: an array of the right length
        count = len(result.pop("prefixItems"))
        result.update({"minItems": count, "maxItems": count, "items": result.get("items", {})})
    if result.get("type") == "integer":
        # every integer has a range: what the API accepts, or at most what a bigint holds
        result.setdefault("minimum", INT8_MIN)
        result.setdefault("maximum", INT8_MAX)
    return result


def _without_null_unions(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``anyOf: [X, {type: null}]`` as 3.0's ``nullable: true`` (``$ref`` siblings are ignored in 3.0,
    hence the ``allOf`` around one)."""
    result = dict(schema)
    for union in ("anyOf", "oneOf"):
        options = result.get(union)
        if not (isinstance(options, list) and {"type": "null"} in options):
            continue
        rest = [option for option in options if option != {"type": "null"}]
        del result[union]
        if len(rest) == 1 and "$ref" in rest[0]:
            result.update({"allOf": rest, "nullable": True})
        elif len(rest) == 1:
            result.update({**rest[0], "nullable": True})
        else:
            result.update({union: rest, "nullable": True})
    return result


# --- the human-readable page ------------------------------------------------------------------

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 72rem; padding: 1rem 2rem; }
h1 { margin-bottom: 0.2rem; } h2 { border-bottom: 2px solid #ddd; margin-top: 2.5rem; }
section.op { border: 1px solid #ddd; border-radius: 6px; margin: 1rem 0; padding: 0.6rem 1rem; }
.method { display: inline-block; min-width: 4.5rem; font-weight: bold; font-family: monospace; }
.GET { color: #0b6e99; } .POST { color: #2b8a3e; } .PUT, .PATCH { color: #b35c00; }
.DELETE { color: #c92a2a; } code, .path { font-family: monospace; } .path { font-size: 1.05rem; }
table { border-collapse: collapse; margin: 0.4rem 0; }
td, th { border: 1px solid #e3e3e3; padding: 0.2rem 0.6rem; } th { background: #f6f6f6; text-align: left; }
.muted { color: #666; } nav a { margin-right: 0.8rem; }
"""
#: the page's one style sheet, inline: its hash is in the page's Content-Security-Policy
DOCS_STYLE = _STYLE


def render_docs(document: Mapping[str, Any], schema_url: str = "/api/schema") -> str:
    """The OpenAPI ``document`` as one HTML page: tags, operations, parameters, bodies, schemas."""
    esc = html.escape
    info = document.get("info", {})
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, methods in document.get("paths", {}).items():
        for method, op in methods.items():
            for tag in op.get("tags") or ["other"]:
                by_tag.setdefault(tag, []).append((path, method.upper(), op))

    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(info.get('title', 'API'))} API</title><style>{_STYLE}</style></head><body>",
        f"<h1>{esc(info.get('title', 'API'))} API</h1>",
        f'<p class="muted">version {esc(str(info.get("version", "")))} · '
        f'<a href="{esc(schema_url)}">OpenAPI {esc(str(document.get("openapi", "")))} document</a></p>',
        f"<p>{esc(info.get('description', ''))}</p>",
        "<nav>" + "".join(f'<a href="#tag-{esc(tag)}">{esc(tag)}</a>' for tag in sorted(by_tag)),
        '<a href="#schemas">schemas</a></nav>',
    ]
    for tag in sorted(by_tag):
        out.append(f'<h2 id="tag-{esc(tag)}">{esc(tag)}</h2>')
        for path, method, op in sorted(by_tag[tag]):
            out += _render_operation(path, method, op)
    out.append('<h2 id="schemas">Schemas</h2>')
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        out += _render_schema(name, schema)
    out.append("</body></html>")
    return "\n".join(out)


def _render_operation(path: str, method: str, op: Mapping[str, Any]) -> list[str]:
    esc = html.escape
    out = [
        f'<section class="op" id="{esc(op.get("operationId", ""))}">',
        f'<div><span class="method {esc(method)}">{esc(method)}</span> '
        f'<span class="path">{esc(path)}</span></div>',
        f"<p>{esc(op.get('summary', ''))}</p>",
    ]
    parameters = op.get("parameters", [])
    if parameters:
        out.append("<table><tr><th>parameter</th><th>in</th><th>type</th><th>required</th><th></th></tr>")
        for param in parameters:
            out.append(
                f"<tr><td><code>{esc(param['name'])}</code></td><td>{esc(param['in'])}</td>"
                f"<td>{_type_html(param.get('schema', {}))}</td>"
                f"<td>{'yes' if param.get('required') else ''}</td>"
                f"<td>{esc(param.get('description', ''))}</td></tr>"
            )
        out.append("</table>")
    body = op.get("requestBody")
    if body:
        for media, content in body.get("content", {}).items():
            out.append(f"<p>Request body ({esc(media)}): {_type_html(content.get('schema', {}))}</p>")
    out.append("<table><tr><th>status</th><th>response</th><th>body</th></tr>")
    for status, response in op.get("responses", {}).items():
        bodies = ", ".join(
            f'{_type_html(content.get("schema", {}))} <span class="muted">({esc(media)})</span>'
            for media, content in response.get("content", {}).items()
        )
        out.append(
            f"<tr><td>{esc(status)}</td><td>{esc(response.get('description', ''))}</td><td>{bodies}</td></tr>"
        )
    out.append("</table>")
    if not any(requirement == {} for requirement in op.get("security", [])):
        out.append('<p class="muted">Requires authentication.</p>')
    out.append("</section>")
    return out


def _render_schema(name: str, schema: Mapping[str, Any]) -> list[str]:
    esc = html.escape
    out = [f'<section class="op" id="schema-{esc(name)}"><h3><code>{esc(name)}</code></h3>']
    if schema.get("description"):
        out.append(f"<p>{esc(schema['description'])}</p>")
    properties = schema.get("properties")
    if properties:
        required = set(schema.get("required", ()))
        out.append("<table><tr><th>field</th><th>type</th><th>required</th></tr>")
        for field, field_schema in properties.items():
            out.append(
                f"<tr><td><code>{esc(field)}</code></td><td>{_type_html(field_schema)}</td>"
                f"<td>{'yes' if field in required else ''}</td></tr>"
            )
        out.append("</table>")
    else:
        out.append(f"<p>{_type_html(schema)}</p>")
    out.append("</section>")
    return out


def _type_html(schema: Mapping[str, Any]) -> str:
    """A short readable type: ``ProjectRead``, ``list[Label]``, ``integer | null``, ``"a" | "b"``."""
    esc = html.escape
    if "$ref" in schema:
        name = str(schema["$ref"]).removeprefix(REF_PREFIX)
        text = f'<a href="#schema-{esc(name)}">{esc(name)}</a>'
    elif "allOf" in schema and len(schema["allOf"]) == 1:
        text = _type_html(schema["allOf"][0])
    elif "anyOf" in schema or "oneOf" in schema:
        text = " | ".join(_type_html(option) for option in schema.get("anyOf", schema.get("oneOf", [])))
    elif "enum" in schema:
        text = " | ".join(f"<code>{esc(repr(value))}</code>" for value in schema["enum"])
    elif schema.get("type") == "array":
        text = f"list[{_type_html(schema.get('items', {}))}]"
    elif schema.get("type") == "object" and "additionalProperties" in schema:
        values = schema["additionalProperties"]
        text = f"map[string, {_type_html(values) if isinstance(values, dict) else 'any'}]"
    else:
        text = esc(str(schema.get("type", "any")))
        if "format" in schema:
            text += f' <span class="muted">({esc(str(schema["format"]))})</span>'
    return text + (" | null" if schema.get("nullable") else "")
