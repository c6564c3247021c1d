"""HTTP handlers: parse the request with a model, call the domain, render a model."""

from collections.abc import Mapping
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from lendo_api.errors import InvalidInput, MalformedJson
from lendo_api.keys import APPLICATIONS, REQUEST_ID
from lendo_api.models import (
    Application,
    ApplicationPage,
    ApplicationPath,
    ApplicationQuery,
    FieldError,
    Health,
    NewApplication,
)

M = TypeVar("M", bound=BaseModel)

APPLICATION_ROUTE = "application"


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/applications", create_application)
    app.router.add_get("/api/applications", list_applications)
    app.router.add_get("/api/applications/{id}", get_application, name=APPLICATION_ROUTE)
    app.router.add_get("/healthz", health)


async def create_application(request: web.Request) -> web.Response:
    new = _parse_json(NewApplication, await request.read())
    created = await request.app[APPLICATIONS].create(
        first_name=new.first_name, last_name=new.last_name, request_id=request[REQUEST_ID]
    )
    location = request.app.router[APPLICATION_ROUTE].url_for(id=str(created.id))
    return _render(
        Application.model_validate(created), status=201, headers={"Location": str(location)}
    )


async def get_application(request: web.Request) -> web.Response:
    path = _parse(ApplicationPath, request.match_info)
    application = await request.app[APPLICATIONS].get(path.id)
    return _render(Application.model_validate(application))


async def list_applications(request: web.Request) -> web.Response:
    query = _parse(ApplicationQuery, request.query)
    page = await request.app[APPLICATIONS].list_page(
        status=query.status, limit=query.limit, after=query.cursor
    )
    return _render(
        ApplicationPage(
            items=[Application.model_validate(item) for item in page.items],
            next_cursor=page.next_after,
        )
    )


async def health(request: web.Request) -> web.Response:
    return _render(Health())


def _parse_json(model: type[M], body: bytes) -> M:
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        [first, *_] = error.errors()
        if first["type"] == "json_invalid":
            raise MalformedJson(first["msg"]) from None
        raise _invalid(error) from None


def _parse(model: type[M], data: Mapping[str, str]) -> M:
    try:
        return model.model_validate(dict(data))
    except ValidationError as error:
        raise _invalid(error) from None


def _invalid(error: ValidationError) -> InvalidInput:
    return InvalidInput(
        [
            FieldError(field=".".join(map(str, e["loc"])) or "body", message=e["msg"])
            for e in error.errors()
        ]
    )


def _render(
    model: BaseModel, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        body=model.model_dump_json().encode(),
        content_type="application/json",
        headers=headers,
    )
