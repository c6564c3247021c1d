"""The bank partner's HTTP contract: ``POST /api/applications`` and ``GET /api/jobs``.

Handlers parse, call :class:`~lendo_banksim.state.BankState` and render; the
contract's refusals are :mod:`lendo_banksim.errors` exceptions rendered in one
middleware. Faults are injected in an outer middleware, before any of that.
"""

import asyncio
from uuid import UUID

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel, ValidationError

from lendo_banksim.contract import ApplicationCreated, ApplicationIn, ErrorOut
from lendo_banksim.errors import (
    ApplicationIdMissing,
    ApplicationIdNotUuid,
    BankError,
    InvalidPayload,
)
from lendo_banksim.keys import BANK_STATE

CONNECTION_DROPPED = 444
"""Logged status of a request whose connection was closed unanswered (nginx's 444)."""


def bank_api() -> web.Application:
    """The sub-application to mount at ``/api``."""
    api = web.Application(middlewares=[inject_faults, render_refusals])
    api.router.add_post("/applications", submit_application)
    api.router.add_get("/jobs", get_job)
    return api


async def submit_application(request: web.Request) -> web.Response:
    try:
        application = ApplicationIn.model_validate_json(await request.read())
    except ValidationError as error:
        raise InvalidPayload from error
    request.config_dict[BANK_STATE].submit(application.id)
    created = ApplicationCreated(
        id=application.id, first_name=application.first_name, last_name=application.last_name
    )
    return json_response(created, status=201)


async def get_job(request: web.Request) -> web.Response:
    raw = request.query.get("application_id")
    if not raw:
        raise ApplicationIdMissing
    try:
        application_id = UUID(raw)
    except ValueError as error:
        raise ApplicationIdNotUuid from error
    return json_response(request.config_dict[BANK_STATE].job(application_id))


@web.middleware
async def inject_faults(request: web.Request, handler: Handler) -> web.StreamResponse:
    draw = request.config_dict[BANK_STATE].faults.draw()
    if draw.delay:
        # Read the body first: a slow bank has the request, it is only late to answer.
        # Unread, the body would be lost if the client gave up in the meantime.
        await request.read()
        await asyncio.sleep(draw.delay)
    if draw.drop:
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=CONNECTION_DROPPED)
    if draw.answer is not None:
        return draw.answer.response()
    return await handler(request)


@web.middleware
async def render_refusals(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except BankError as refusal:
        return json_response(ErrorOut(error=refusal.message), status=refusal.status)


def json_response(body: BaseModel, status: int = 200) -> web.Response:
    return web.Response(text=body.model_dump_json(), status=status, content_type="application/json")
