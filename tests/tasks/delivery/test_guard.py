import pytest

from tasks.delivery.guard import RefusedURL, check_url


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
