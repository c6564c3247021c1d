"""The control API under ``/_sim``, for tests and benchmarks; not part of the bank's contract.

Ids are rendered as strings and the maps are plain JSON objects, so a
benchmark script can read them without this package.
"""

import json

from aiohttp import web
from pydantic import ValidationError

from lendo_banksim.bodies import ErrorOut
from lendo_banksim.keys import BANK_STATE
from lendo_banksim.routes import json_response


def control_api() -> web.Application:
    """The sub-application to mount at ``/_sim``."""
    control = web.Application()
    control.router.add_get("/stats", stats)
    control.router.add_get("/decisions", decisions)
    control.router.add_get("/refused", refused)
    control.router.add_get("/decision_times", decision_times)
    control.router.add_get("/requests_per_application", requests_per_application)
    control.router.add_post("/reset", reset)
    control.router.add_get("/faults", get_faults)
    control.router.add_put("/faults", put_faults)
    return control


async def stats(request: web.Request) -> web.Response:
    return json_response(request.config_dict[BANK_STATE].stats())


async def decisions(request: web.Request) -> web.Response:
    outcomes = request.config_dict[BANK_STATE].decisions()
    return web.json_response({str(app_id): outcome for app_id, outcome in outcomes.items()})


async def refused(request: web.Request) -> web.Response:
    """The ids of every application refused as invalid, sorted."""
    ids = request.config_dict[BANK_STATE].refused()
    return web.json_response(sorted(str(app_id) for app_id in ids))


async def decision_times(request: web.Request) -> web.Response:
    times = request.config_dict[BANK_STATE].decision_times()
    return web.json_response({str(app_id): moment for app_id, moment in times.items()})


async def requests_per_application(request: web.Request) -> web.Response:
    counts = request.config_dict[BANK_STATE].requests_per_application()
    return web.json_response({str(app_id): count for app_id, count in counts.items()})


async def reset(request: web.Request) -> web.Response:
    return web.json_response({"forgotten": request.config_dict[BANK_STATE].reset()})


async def get_faults(request: web.Request) -> web.Response:
    return json_response(request.config_dict[BANK_STATE].faults.rates)


async def put_faults(request: web.Request) -> web.Response:
    """Change any of the fault fields; the others keep their values."""
    try:
        changes = json.loads(await request.read())
    except ValueError:
        raise _bad_request("the body is not JSON") from None
    if not isinstance(changes, dict):
        raise _bad_request("the body is not a JSON object")
    try:
        faults = request.config_dict[BANK_STATE].set_faults(changes)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'faults'}: {e['msg']}" for e in error.errors()
        )
        raise _bad_request(problems) from None
    return json_response(faults)


def _bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(
        text=ErrorOut(error=message).model_dump_json(), content_type="application/json"
    )
