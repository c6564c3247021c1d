"""Which URLs a webhook may send to: the egress rules, checked at registration and delivery.

Only http(s) URLs; with an allow-list (``LENDO_WEBHOOK_ALLOWED_HOSTS``) only
its hosts, matched as the served OpenAPI document's URL pattern states; and,
unless private targets are allowed, only hosts whose every address is public:
loopback, private, link-local (cloud metadata among them), shared, reserved
and multicast addresses are refused, so a webhook cannot reach inside the
network the API runs in. A delivery checks the URL again, and connects only
to addresses its resolver has checked (:class:`PublicResolver`), so a name
that resolves differently by then, or between the check and the connection,
reaches nothing inside either.
"""

import asyncio
import errno
import ipaddress
import re
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

from aiohttp import ThreadedResolver
from aiohttp.abc import AbstractResolver, ResolveResult

from lendo_api.models import webhook_url_pattern

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def allowed_hosts_pattern(hosts: Sequence[str]) -> str:
    """The URL pattern of an allow-list: :func:`webhook_url_pattern` on exactly these hosts."""
    return webhook_url_pattern("|".join(re.escape(host) for host in hosts))


class TargetRules:
    """The egress rules of this server; :meth:`refusal` says why a URL breaks them, if it does."""

    def __init__(self, *, allowed_hosts: Sequence[str], allow_private: bool) -> None:
        self._allowed = re.compile(allowed_hosts_pattern(allowed_hosts)) if allowed_hosts else None
        self._allow_private = allow_private

    async def refusal(self, url: str) -> str | None:
        """Why ``url`` (already matching the model's pattern) may not be a target; else None.

        For a registration: the host's every address is looked up and checked.
        """
        refused = self.refusal_at_delivery(url)
        if refused is not None or self._allow_private:
            return refused
        host = urlsplit(url).hostname or ""
        try:
            addresses = await _addresses(host)
        except (OSError, ValueError):
            return f"the host {host!r} does not resolve"
        return next((_non_public(host, a) for a in addresses if not _public(a)), None)

    def refusal_at_delivery(self, url: str) -> str | None:
        """Why ``url`` may not be sent to now, as far as it tells without resolving its host.

        A host name is checked as it is connected to, by :meth:`resolver`'s answers.
        """
        if self._allowed is not None and not self._allowed.fullmatch(url):
            return "the host is not one this server may send to (LENDO_WEBHOOK_ALLOWED_HOSTS)"
        if self._allow_private:
            return None
        host = urlsplit(url).hostname or ""
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return None
        return None if _public(address) else _non_public(host, address)

    def resolver(self) -> AbstractResolver:
        """The resolver deliveries connect through: only to public addresses, unless allowed."""
        return ThreadedResolver() if self._allow_private else PublicResolver()


class PublicResolver(ThreadedResolver):
    """The system's resolver, refusing a name that has any non-public address."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await super().resolve(host, port, family)
        for result in results:
            address = ipaddress.ip_address(result["host"])
            if not _public(address):
                # With an errno, aiohttp's connection error keeps the reason in its message.
                raise OSError(errno.EACCES, _non_public(host, address))
        return results


async def _addresses(host: str) -> list[IpAddress]:
    """The host's addresses: itself if an IP literal, else what the resolver answers."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(info[4][0]) for info in infos]


def _non_public(host: str, address: IpAddress) -> str:
    return f"the host {host!r} has the non-public address {address}"


def _public(address: IpAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast
