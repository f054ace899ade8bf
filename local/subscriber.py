"""A webhook subscriber for the main job: listens on loopback and checks each signature."""

import hmac
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tasks.delivery.signing import cal_signature


@dataclass
class Received:
    trigger: str
    booking_uid: str
    webhook_id: str
    signature_ok: bool


@dataclass
class DemoSubscriber:
    secret: str
    received: list[Received] = field(default_factory=list)
    url: str = ""

    def start(self) -> str:
        """Serve on a free loopback port in a background thread; return the URL."""
        subscriber = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                expected = cal_signature(body, subscriber.secret)
                envelope = json.loads(body)
                subscriber.received.append(
                    Received(
                        trigger=envelope["triggerEvent"],
                        booking_uid=envelope["payload"]["uid"],
                        webhook_id=self.headers.get("webhook-id", ""),
                        signature_ok=hmac.compare_digest(
                            expected, self.headers.get("X-Cal-Signature-256", "")
                        ),
                    )
                )
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/webhooks"
        return self.url

    def stop(self) -> None:
        self._server.shutdown()
