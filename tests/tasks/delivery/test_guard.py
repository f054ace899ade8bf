import socket

import pytest
from pytest_httpserver import HTTPServer

from tasks.clients import webhook_client
from tasks.delivery.guard import RefusedURL, check_url
from tasks.delivery.http import post


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.1.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://0.0.0.0/hook",
        "ftp://93.184.216.34/hook",
        "not a url",
    ],
)
def test_internal_or_non_http_targets_are_refused(url: str) -> None:
    with pytest.raises(RefusedURL):
        check_url(url, allowed_networks=[])


def test_allow_listed_network_is_reachable() -> None:
    check_url("http://127.0.0.1:8080/hook", allowed_networks=["127.0.0.0/8"])


def test_a_public_address_is_allowed() -> None:
    check_url("https://93.184.216.34/hook", allowed_networks=[])


def test_allow_list_does_not_open_other_internal_networks() -> None:
    with pytest.raises(RefusedURL):
        check_url("http://10.0.0.5/hook", allowed_networks=["127.0.0.0/8"])


class Rebinding:
    """A resolver whose answer for one name changes after the first lookup, as a DNS
    rebinding attack makes it: first an address the guard allows, then an internal one."""

    def __init__(self, name: str, first: str, then: str):
        self.name, self.answers, self.lookups = name, [first, then], 0
        self.real = socket.getaddrinfo

    def __call__(self, host, port, *args, **kwargs):
        if host != self.name:
            return self.real(host, port, *args, **kwargs)
        address = self.answers[min(self.lookups, 1)]
        self.lookups += 1
        return self.real(address, port, *args, **kwargs)


def test_the_delivery_connects_to_the_address_the_guard_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    subscriber = HTTPServer(host="127.0.0.1", port=0)
    subscriber.start()
    internal = HTTPServer(host="127.0.0.2", port=subscriber.port)  # same port, other address
    internal.start()
    try:
        subscriber.expect_request("/hook").respond_with_data("subscriber")
        internal.expect_request("/hook").respond_with_data("internal")
        resolver = Rebinding("rebind.example", first="127.0.0.1", then="127.0.0.2")
        monkeypatch.setattr(socket, "getaddrinfo", resolver)
        url = f"http://rebind.example:{subscriber.port}/hook"

        pinned = check_url(url, allowed_networks=["127.0.0.1/32"])  # 127.0.0.2 is refused
        with webhook_client(pinned) as client:
            attempt, error = post(
                client, url, body=b"{}", headers={}, total_timeout=5, excerpt_bytes=100
            )
        assert resolver.lookups == 1  # the delivery did not ask again
        with pytest.raises(RefusedURL):  # what a second lookup would have reached
            check_url(url, allowed_networks=["127.0.0.1/32"])
    finally:
        subscriber.stop()
        internal.stop()

    assert error is None and attempt.excerpt == "subscriber"
    assert len(internal.log) == 0
    (request, _), *_ = subscriber.log
    assert request.headers["Host"] == f"rebind.example:{subscriber.port}"
