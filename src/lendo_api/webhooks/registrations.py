"""Webhooks as the store keeps them: a client's receiver, the events it wants, its secrets."""

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from lendo_api.timestamps import now

SECRET_GRACE = timedelta(hours=24)
"""How long a rotated-out secret keeps signing beside the new one (docs/api.md)."""


@dataclass(frozen=True, slots=True)
class StoredWebhook:
    """One registered webhook, secrets included; the API shows the secret only when made."""

    id: str
    owner: str
    """The API client that registered it (:data:`lendo_api.auth.CLIENT`); empty without keys."""
    url: str
    events: tuple[str, ...]
    """The event types it receives, in the order registered."""
    secret: str
    """The ``whsec_...`` secret that signs every delivery."""
    previous_secret: str | None
    """The secret before the last rotation, signing beside it until ``previous_secret_until``."""
    previous_secret_until: datetime | None
    created_at: datetime


def new_secret() -> str:
    """A Standard Webhooks signing secret: ``whsec_`` and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def new_webhook(url: str, events: tuple[str, ...], owner: str) -> StoredWebhook:
    return StoredWebhook(
        id=f"wh_{secrets.token_hex(16)}",
        owner=owner,
        url=url,
        events=events,
        secret=new_secret(),
        previous_secret=None,
        previous_secret_until=None,
        created_at=now(),
    )
