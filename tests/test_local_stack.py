"""The local stack the main job, the benches and the tests start their Prefect server with."""

import socket
from pathlib import Path

import httpx
import pytest

import local.stack
from local.stack import LocalPrefect


@pytest.mark.integration
def test_a_server_whose_port_is_taken_before_it_binds_starts_on_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A free port can be taken by another process between the check and the server's bind
    (tests start many servers at once): the stack tries another port."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        monkeypatch.setattr(local.stack, "port_is_free", lambda *_: True)  # free at the check
        stack = LocalPrefect(home=tmp_path / "prefect", port=port, ui=False)
        try:
            stack.start()

            assert stack.port != port
            assert httpx.get(f"{stack.api_url}/health", timeout=5).status_code == 200
            assert "already in use" in stack.log_path("server").read_text()
        finally:
            stack.stop(timeout=5)
