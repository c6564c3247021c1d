"""The OpenAPI document: valid 3.0, complete, and generated from the handlers' own models."""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate
from pytest_aiohttp import AiohttpClient
from redis.asyncio import Redis

from lendo_api.app import create_app
from lendo_api.models import ApplicationPath, ApplicationQuery, CreateHeaders, FieldError
from lendo_api.openapi.document import COMPONENTS, REF_TEMPLATE, openapi30
from lendo_api.settings import ApiSettings

Client = TestClient[web.Request, web.Application]
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture
async def client(
    tmp_path: Path, redis_url: str, stream_prefix: str, redis: Redis, aiohttp_client: AiohttpClient
) -> Client:
    settings = ApiSettings(
        redis_url=redis_url, stream_prefix=stream_prefix, db_path=tmp_path / "api.sqlite3"
    )
    return await aiohttp_client(create_app(settings))


@pytest.fixture
async def keyed_client(
    tmp_path: Path, redis_url: str, stream_prefix: str, redis: Redis, aiohttp_client: AiohttpClient
) -> Client:
    settings = ApiSettings(
        redis_url=redis_url,
        stream_prefix=stream_prefix,
        db_path=tmp_path / "api.sqlite3",
        api_keys="key-1",
    )
    return await aiohttp_client(create_app(settings))


async def served_document(client: Client) -> dict[str, Any]:
    response = await client.get("/api/openapi.json")
    assert response.status == 200
    assert response.content_type == "application/json"
    served: dict[str, Any] = await response.json()
    return served


@pytest.fixture
async def document(client: Client) -> dict[str, Any]:
    return await served_document(client)


@pytest.fixture
async def keyed_document(keyed_client: Client) -> dict[str, Any]:
    return await served_document(keyed_client)


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def test_the_served_document_is_valid_openapi_3_0(document: dict[str, Any]) -> None:
    validate(document)

    assert re.fullmatch(r"3\.0\.\d+", document["openapi"])
    assert document["info"]["title"]
    assert document["info"]["description"]


async def test_every_route_is_documented_with_every_method(
    client: Client, document: dict[str, Any]
) -> None:
    served = {
        (route.resource.canonical, route.method.lower())
        for route in client.app.router.routes()
        if route.resource is not None and not (route.name or "").startswith("swagger.")
    }

    documented = {(path, method) for path, method, _ in operations(document)}

    assert served == documented
    assert ("/api/applications", "post") in documented


def test_every_operation_has_a_summary_a_description_and_described_responses(
    document: dict[str, Any],
) -> None:
    for path, method, operation in operations(document):
        where = f"{method.upper()} {path}"
        assert operation["summary"], where
        assert operation["description"], where
        assert operation["operationId"], where
        assert "produces" not in operation, where
        assert operation["responses"], where
        for status, response in operation["responses"].items():
            assert response["description"], (where, status)
            assert "X-Request-ID" in response["headers"], (where, status)
            if method == "head" or status == "204":
                assert "content" not in response, (where, status)
                continue
            [(media_type, content)] = response["content"].items()
            assert "example" in content, (where, status)
            if int(status) >= 400:
                assert media_type == "application/problem+json", (where, status)
                assert content["schema"] == {"$ref": "#/components/schemas/Problem"}
            elif path == "/metrics":
                assert media_type == "text/plain", (where, status)
            elif path == "/api/events":
                assert media_type == "text/event-stream", (where, status)
            else:
                assert media_type == "application/json", (where, status)


def test_every_error_a_create_can_answer_with_is_documented(document: dict[str, Any]) -> None:
    create = document["paths"]["/api/applications"]["post"]

    assert set(create["responses"]) == {
        "200", "201", "400", "409", "413", "415", "422", "500"
    }  # fmt: skip
    assert create["requestBody"]["required"] is True
    assert set(create["requestBody"]["content"]) == {"application/json"}
    assert "Location" in create["responses"]["201"]["headers"]
    assert "Location" in create["responses"]["200"]["headers"]


def test_with_api_keys_applications_events_and_webhooks_need_the_bearer_scheme_health_not(
    keyed_document: dict[str, Any],
) -> None:
    [(name, scheme)] = keyed_document["components"]["securitySchemes"].items()
    assert scheme["type"] == "http"
    assert scheme["scheme"] == "bearer"

    for path, method, operation in operations(keyed_document):
        if path.startswith(("/api/applications", "/api/events", "/api/webhooks")):
            assert operation["security"] == [{name: []}], (method, path)
            assert "WWW-Authenticate" in operation["responses"]["401"]["headers"], (method, path)
        else:
            assert "security" not in operation, (method, path)
            assert "401" not in operation["responses"], (method, path)


def test_without_api_keys_nothing_needs_a_key_or_answers_401(document: dict[str, Any]) -> None:
    assert "securitySchemes" not in document["components"]
    for path, method, operation in operations(document):
        assert "security" not in operation, (method, path)
        assert "401" not in operation["responses"], (method, path)


def test_every_get_has_a_head_with_its_answers_and_no_bodies(document: dict[str, Any]) -> None:
    paths = document["paths"]
    gets = {path for path, item in paths.items() if "get" in item}
    assert {path for path, item in paths.items() if "head" in item} == gets
    for path in gets:
        get, head = paths[path]["get"], paths[path]["head"]
        assert head["operationId"] != get["operationId"], path
        assert head["parameters"] == get["parameters"], path
        assert head["responses"].keys() == get["responses"].keys(), path
        for status, response in head["responses"].items():
            assert response["headers"] == get["responses"][status]["headers"], (path, status)


def test_the_request_id_header_is_documented_as_replaced_not_refused(
    document: dict[str, Any],
) -> None:
    for path, method, operation in operations(document):
        [parameter] = [p for p in operation["parameters"] if p["name"] == "X-Request-ID"]
        assert parameter["schema"] == {"type": "string"}, (method, path)
        assert "replaced" in parameter["description"], (method, path)


def test_a_create_links_to_the_read_of_what_it_created(document: dict[str, Any]) -> None:
    responses = document["paths"]["/api/applications"]["post"]["responses"]
    read = document["paths"]["/api/applications/{id}"]["get"]["operationId"]

    for status in ("200", "201"):
        [link] = responses[status]["links"].values()
        assert link["operationId"] == read
        assert link["parameters"] == {"id": "$response.body#/id"}


def test_the_component_schemas_are_the_models_own_schemas(document: dict[str, Any]) -> None:
    expected: dict[str, Any] = {}
    for model, mode in COMPONENTS:
        schema = model.model_json_schema(ref_template=REF_TEMPLATE, mode=mode)
        expected.update(schema.pop("$defs", {}))
        expected[model.__name__] = schema

    components = document["components"]["schemas"]

    assert set(components) == set(expected)
    for name, schema in expected.items():
        assert components[name] == openapi30(schema), name
    assert components["Problem"]["properties"]["errors"]["items"] == {
        "$ref": "#/components/schemas/FieldError"
    }
    assert set(components["FieldError"]["properties"]) == set(FieldError.model_fields)


@pytest.mark.parametrize(
    ("model", "location", "path", "method"),
    [
        (ApplicationQuery, "query", "/api/applications", "get"),
        (ApplicationPath, "path", "/api/applications/{id}", "get"),
        (ApplicationPath, "path", "/api/applications/{id}/events", "get"),
        (CreateHeaders, "header", "/api/applications", "post"),
    ],
)
def test_the_parameters_are_the_models_fields(
    document: dict[str, Any], model: Any, location: str, path: str, method: str
) -> None:
    parameters = document["paths"][path][method]["parameters"]

    fields = [field.alias or name for name, field in model.model_fields.items()]

    assert [p["name"] for p in parameters if p["name"] in fields] == fields
    assert all(p["in"] == location for p in parameters if p["name"] in fields)
    assert [p["name"] for p in parameters if p["name"] not in fields] == ["X-Request-ID"]


def test_every_example_is_valid_against_its_own_schema(document: dict[str, Any]) -> None:
    checked = 0
    for _, _, operation in operations(document):
        bodies = [operation.get("requestBody", {"content": {}})]
        for body in [*bodies, *operation["responses"].values()]:
            for content in body.get("content", {}).values():
                # The components travel along, so that the $refs resolve.
                schema = {**content["schema"], "components": document["components"]}
                OAS30Validator(schema).validate(content["example"])
                checked += 1

    assert checked >= 20


@pytest.mark.parametrize(
    ("pydantic", "openapi"),
    [
        (
            {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
            {"type": "string", "nullable": True, "default": None},
        ),
        (
            {"anyOf": [{"$ref": "#/components/schemas/X"}, {"type": "null"}]},
            {"allOf": [{"$ref": "#/components/schemas/X"}], "nullable": True},
        ),
        (
            {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]},
            {"anyOf": [{"type": "string"}, {"type": "integer"}], "nullable": True},
        ),
        ({"const": "ok", "type": "string"}, {"enum": ["ok"], "type": "string"}),
        ({"type": "string", "examples": ["a", "b"]}, {"type": "string", "example": "a"}),
        (
            {"properties": {"const": {"type": "array", "items": {"const": 1}}}},
            {"properties": {"const": {"type": "array", "items": {"enum": [1]}}}},
        ),
    ],
)
def test_json_schema_is_rewritten_in_the_openapi_3_0_dialect(
    pydantic: dict[str, Any], openapi: dict[str, Any]
) -> None:
    assert openapi30(pydantic) == openapi


async def test_swagger_ui_is_served_from_here_with_no_outside_assets(client: Client) -> None:
    page = await client.get("/api/docs")
    html = await page.text()

    assert page.status == 200
    assert page.content_type == "text/html"
    assert "/api/openapi.json" in html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets
    assert all(asset.startswith("/api/docs/static/") for asset in assets), assets
    for asset in assets:
        assert (await client.get(asset)).status == 200, asset
