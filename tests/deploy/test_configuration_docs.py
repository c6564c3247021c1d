"""docs/configuration.md names every variable each process reads, so it cannot fall behind."""

from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from lendo_api.settings import ApiSettings
from lendo_banksim.settings import SimSettings
from lendo_poller.settings import PollerSettings

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


@pytest.mark.parametrize("settings", [ApiSettings, PollerSettings, SimSettings])
def test_every_variable_is_documented(settings: type[BaseSettings]) -> None:
    prefix = settings.model_config["env_prefix"]
    variables = {f"{prefix}{name.upper()}" for name in settings.model_fields}

    undocumented = {v for v in variables if f"`{v}`" not in DOC.read_text()}

    assert not undocumented, f"add to docs/configuration.md: {sorted(undocumented)}"
