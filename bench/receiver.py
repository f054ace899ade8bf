"""A webhook subscriber for benchmarks: answers 200 at once and notes when each message came."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """Serves on a loopback port; `first_seen[(booking uid, trigger)]` is the arrival time."""

    def __init__(self) -> None:
        self.first_seen: dict[tuple[str, str], float] = {}
        self.webhook_ids: dict[str, int] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                arrived = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                message = json.loads(body)
                key = (message["payload"]["uid"], message["triggerEvent"])
                with receiver._lock:
                    receiver.first_seen.setdefault(key, arrived)
                    webhook_id = self.headers.get("webhook-id", "")
                    receiver.webhook_ids[webhook_id] = receiver.webhook_ids.get(webhook_id, 0) + 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks"

    def seen(self, uid: str, trigger: str = "BOOKING_CREATED") -> float | None:
        with self._lock:
            return self.first_seen.get((uid, trigger))

    def duplicates(self) -> int:
        """Messages that arrived more than once (at-least-once delivery allows it)."""
        with self._lock:
            return sum(count - 1 for count in self.webhook_ids.values())

    def stop(self) -> None:
        self._server.shutdown()
