"""Configuration of ``lendo-bank-sim``: a :class:`SimConfig` plus where to listen.

Every field is read from ``LENDO_SIM_<FIELD>`` unless given as a flag.
"""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from lendo_banksim.config import SimConfig
from lendo_banksim.logs import LogLevel


class SimSettings(SimConfig, BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LENDO_SIM_", frozen=True, extra="ignore")

    host: str = Field(default="127.0.0.1", description="Interface to listen on.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port to listen on; 0 for any.")
    log_level: LogLevel = Field(default="INFO", description="Least severe level logged.")
