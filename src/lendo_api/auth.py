"""Optional API-key authentication of the applications endpoints.

With ``LENDO_API_KEYS`` set, every ``/api/applications*`` call needs
``Authorization: Bearer <key>``. The docs, the OpenAPI document and the
health check stay open, so a client can learn the API and an orchestrator
can probe it without a key.
"""

import hashlib
import hmac
from collections.abc import Sequence

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from pydantic import SecretStr

from lendo_api.keys import CLIENT

PROTECTED_PREFIX = "/api/applications"
CHALLENGE = 'Bearer realm="lendo-api"'
ANONYMOUS = ""


def api_key_middleware(keys: Sequence[SecretStr]) -> Middleware:
    """Refuse protected calls without one of ``keys``; no keys means no authentication.

    The matching key's client id goes to ``request[CLIENT]``, so that what is
    kept per client (idempotency keys) is kept apart.
    """
    secrets = [key.get_secret_value().encode() for key in keys]
    clients = [f"key:{hashlib.sha256(secret).hexdigest()[:16]}" for secret in secrets]

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[CLIENT] = ANONYMOUS
        if secrets and request.path.startswith(PROTECTED_PREFIX):
            request[CLIENT] = clients[_matching_key(request, secrets)]
        return await handler(request)

    return authenticate


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
