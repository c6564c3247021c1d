"""The simulator's aiohttp application: the bank's contract at ``/api``, control at ``/_sim``.

The bank is plain memory, so there is nothing to open or close: the state is
created with the application and lives as long as it. The contract's routes
sit on this application itself, not on a sub-application, so a bank request
is resolved and handled without the hop into another application.
"""

from aiohttp import web

from lendo_banksim.config import SimConfig
from lendo_banksim.control import control_api
from lendo_banksim.keys import BANK_STATE
from lendo_banksim.routes import add_bank_routes
from lendo_banksim.state import BankState


def create_app(config: SimConfig) -> web.Application:
    app = web.Application()
    app[BANK_STATE] = BankState(config)
    add_bank_routes(app)
    app.add_subapp("/_sim", control_api())
    return app
