"""The simulator's aiohttp application: the bank's contract at ``/api``, control at ``/_sim``.

The bank is plain memory, so there is nothing to open or close: the state is
created with the application and lives as long as it.
"""

from aiohttp import web

from lendo_banksim.config import SimConfig
from lendo_banksim.control import control_api
from lendo_banksim.keys import BANK_STATE
from lendo_banksim.routes import bank_api
from lendo_banksim.state import BankState

__all__ = ["BANK_STATE", "create_app"]


def create_app(config: SimConfig) -> web.Application:
    app = web.Application()
    app[BANK_STATE] = BankState(config)
    app.add_subapp("/api", bank_api())
    app.add_subapp("/_sim", control_api())
    return app
