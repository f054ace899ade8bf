"""A webhook subscriber and a mailbox for the main job: each listens on loopback; the
subscriber checks every signature."""

import email
import email.policy
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


@dataclass
class DemoMailbox:
    """An SMTP server for the main job on loopback (aiosmtpd) that keeps what it receives:
    the cancellation and rejection notices the pipeline sends."""

    received: list[tuple[str, str]] = field(default_factory=list)  # (to, subject)
    port: int = 0

    def start(self) -> int:
        from aiosmtpd.controller import Controller

        from local.stack import free_port

        mailbox = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's)
                message = email.message_from_bytes(envelope.content, policy=email.policy.default)
                mailbox.received.append((str(message["To"]), str(message["Subject"])))
                return "250 OK"

        self.port = free_port()
        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self.port

    def stop(self) -> None:
        self._controller.stop()
