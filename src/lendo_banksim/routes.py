"""The bank partner's HTTP contract: ``POST /api/applications`` and ``GET /api/jobs``.

Handlers parse, call :class:`~lendo_banksim.state.BankState` and render. Each
runs inside :func:`as_the_bank`, one wrapper that first injects the faults
drawn for the request, then renders the contract's refusals
(:mod:`lendo_banksim.errors` exceptions): what a middleware on a
sub-application would do, without its layers on every request.
"""

import asyncio
from collections.abc import Awaitable, Callable
from uuid import UUID

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel, ValidationError

from lendo_banksim.bodies import ApplicationCreated, ApplicationIn, ErrorOut
from lendo_banksim.errors import (
    ApplicationIdMissing,
    ApplicationIdNotUuid,
    BankError,
    InvalidPayload,
)
from lendo_banksim.faults import NO_FAULT
from lendo_banksim.keys import BANK_STATE
from lendo_banksim.state import BankState

CONNECTION_DROPPED = 444
"""Logged status of a request whose connection was closed unanswered (nginx's 444)."""

BankHandler = Callable[[web.Request, BankState], Awaitable[web.Response]]


def add_bank_routes(app: web.Application) -> None:
    """Serve the bank's contract at ``/api`` on ``app``, which holds the :data:`BANK_STATE`."""
    app.router.add_post("/api/applications", as_the_bank(submit_application))
    app.router.add_get("/api/jobs", as_the_bank(get_job))


def as_the_bank(handler: BankHandler) -> Handler:
    """``handler`` behind the faults drawn for each request, its refusals rendered."""

    async def handle(request: web.Request) -> web.StreamResponse:
        bank = request.app[BANK_STATE]
        draw = bank.faults.draw()
        if draw is not NO_FAULT:
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
        try:
            return await handler(request, bank)
        except BankError as refusal:
            return json_response(ErrorOut(error=refusal.message), status=refusal.status)

    return handle


async def submit_application(request: web.Request, bank: BankState) -> web.Response:
    try:
        application = ApplicationIn.model_validate_json(await request.read())
    except ValidationError as error:
        raise InvalidPayload from error
    bank.submit(application.id)
    created = ApplicationCreated(
        id=application.id, first_name=application.first_name, last_name=application.last_name
    )
    return json_response(created, status=201)


async def get_job(request: web.Request, bank: BankState) -> web.Response:
    raw = request.query.get("application_id")
    if not raw:
        raise ApplicationIdMissing
    try:
        application_id = UUID(raw)
    except ValueError as error:
        raise ApplicationIdNotUuid from error
    return json_response(bank.job(application_id))


def json_response(body: BaseModel, status: int = 200) -> web.Response:
    return web.Response(text=body.model_dump_json(), status=status, content_type="application/json")
