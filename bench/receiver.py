"""A webhook subscriber for benchmarks: answers 200 at once (or 503 to a share of requests)
and notes when each message was delivered."""

import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """Serves on a loopback port; `first_seen[(booking uid, trigger)]` is when it was first
    delivered (answered 200). With `fail_rate`, that share of requests, drawn at random, is
    answered 503 and not counted as delivered."""

    def __init__(self, fail_rate: float = 0.0, seed: int = 1) -> None:
        self.first_seen: dict[tuple[str, str], float] = {}
        self.webhook_ids: dict[str, int] = {}  # delivered (200) per webhook-id
        self.refused = 0
        self._draw = random.Random(seed)
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
                    refuse = receiver._draw.random() < fail_rate
                    if refuse:
                        receiver.refused += 1
                    else:
                        receiver.first_seen.setdefault(key, arrived)
                        webhook_id = self.headers.get("webhook-id", "")
                        count = receiver.webhook_ids.get(webhook_id, 0)
                        receiver.webhook_ids[webhook_id] = count + 1
                self.send_response(503 if refuse else 200)
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
