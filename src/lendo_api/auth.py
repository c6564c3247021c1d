"""Optional API-key authentication of the applications endpoints.

With ``LENDO_API_KEYS`` set, every ``/api/applications*``, ``/api/events`` and
``/api/webhooks*`` call needs ``Authorization: Bearer <key>``. The docs, the
OpenAPI document and the health check stay open, so a client can learn the API and an orchestrator
can probe it without a key.
"""

import hashlib
import hmac
from collections.abc import Sequence

from aiohttp import web
from pydantic import SecretStr

PROTECTED_PREFIXES = ("/api/applications", "/api/events", "/api/webhooks")
CHALLENGE = 'Bearer realm="lendo-api"'
ANONYMOUS = ""

CLIENT = web.RequestKey("client", str)
"""Who is calling: an id derived from the API key, or empty without authentication."""


class ApiKeyCheck:
    """The configured keys, and the check of a request against them; no keys, no check."""

    def __init__(self, keys: Sequence[SecretStr]) -> None:
        self._secrets = [key.get_secret_value().encode() for key in keys]
        self._clients = [
            f"key:{hashlib.sha256(secret).hexdigest()[:16]}" for secret in self._secrets
        ]

    def authenticate(self, request: web.Request) -> None:
        """Refuse a protected call without one of the keys (401); note who calls.

        ``request[CLIENT]`` gets an id derived from the matching key, so that
        what is kept per client (idempotency keys, the owner of applications
        and of their events) is kept apart.
        """
        request[CLIENT] = ANONYMOUS
        if self._secrets and request.path.startswith(PROTECTED_PREFIXES):
            request[CLIENT] = self._clients[_matching_key(request, self._secrets)]


def _matching_key(request: web.Request, secrets: Sequence[bytes]) -> int:
    """The index of the key the request carries; raise 401 if it carries none of them."""
    scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not offered.strip():
        raise web.HTTPUnauthorized(
            headers={"WWW-Authenticate": CHALLENGE},
            text="This call needs an API key: send 'Authorization: Bearer <key>'.",
        )
    # Every key is compared, each in constant time, so the answer's timing tells
    # nothing about how close a guess came or which key it resembled.
    given = offered.strip().encode("utf-8", "surrogateescape")
    matches = [hmac.compare_digest(given, secret) for secret in secrets]
    if not any(matches):
        raise web.HTTPUnauthorized(
            headers={"WWW-Authenticate": f'{CHALLENGE}, error="invalid_token"'},
            text="The API key is not valid.",
        )
    return matches.index(True)
