"""Configuration of ``lendo-bank-sim``: a :class:`SimConfig` plus where to listen.

Every field is read from ``LENDO_SIM_<FIELD>`` unless given as a flag.
"""

from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lendo_banksim.config import SimConfig


class SimSettings(SimConfig, BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LENDO_SIM_", frozen=True, extra="ignore")

    host: str = Field(default="127.0.0.1", description="Interface to listen on.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port to listen on; 0 for any.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Least severe level logged."
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _any_case(cls, level: object) -> object:
        return level.upper() if isinstance(level, str) else level
