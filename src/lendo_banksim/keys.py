"""Typed keys of what the simulator's application holds."""

from aiohttp import web

from lendo_banksim.state import BankState

BANK_STATE = web.AppKey("bank_state", BankState)
"""The one in-memory bank behind both the contract and the control API."""
