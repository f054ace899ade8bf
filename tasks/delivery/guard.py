"""Outbound URL guard: webhooks never reach internal addresses unless allow-listed.

The guard resolves the host once and checks every address; the delivery then connects to
one of those addresses (`tasks.clients.webhook_client(pinned=...)`), never resolving the host
again, so a DNS answer that changes after the check (DNS rebinding) cannot turn a checked
public host into an internal one. The Host header and TLS server name stay the URL's host.
"""

import ipaddress
import socket
from urllib.parse import SplitResult, urlsplit

import httpx

from tasks.errors import PermanentError


class RefusedURL(PermanentError):
    """The subscriber URL is not allowed as a webhook target."""


def check_scheme(url: str) -> SplitResult:
    """The URL's parts, if it is an absolute http(s) URL with a host; RefusedURL if not."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RefusedURL("only absolute http(s) URLs can receive webhooks")
    return parts


def check_url(url: str, allowed_networks: list[str]) -> list[str]:
    """Refuse non-HTTP(S) URLs and hosts resolving to private, loopback, link-local,
    multicast, reserved or unspecified addresses, unless every address is allow-listed.
    Returns the checked addresses, in the resolver's order: connect only to these."""
    parts = check_scheme(url)
    assert parts.hostname is not None
    allowed = [ipaddress.ip_network(net, strict=False) for net in allowed_networks]
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        # DNS can fail for a while: a connection error, so the delivery is retried.
        raise httpx.ConnectError(
            f"host {parts.hostname} does not resolve ({exc.strerror})"
        ) from None
    checked: list[str] = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not any(address in net for net in allowed) and (
            not address.is_global or address.is_multicast
        ):
            raise RefusedURL(f"host {parts.hostname} resolves to an internal address {address}")
        checked.extend([str(address)] if str(address) not in checked else [])
    return checked
