"""Subscribers that misbehave at the socket level, on loopback: what pytest-httpserver cannot
do (answer a byte at a time, never answer)."""

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def raw_subscriber(answer: bytes, *, byte_every: float = 0.0) -> Iterator[str]:
    """Serve every connection by reading the request head, then sending `answer`, one byte
    every `byte_every` seconds (all at once when 0). Yields the URL."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                conn.recv(65536)
                if not byte_every:
                    conn.sendall(answer)
                    return
                for i in range(len(answer)):
                    if stop.is_set():
                        return
                    conn.sendall(answer[i : i + 1])
                    time.sleep(byte_every)
            except OSError:
                return

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/hook"
    finally:
        stop.set()
        thread.join()
        server.close()


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
# A status line, then headers that never end.
DRIPPING_HEADERS = b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"a" * 10_000
# Complete headers, then a body far longer than the deadline allows at a byte a tick.
DRIPPING_BODY = b"HTTP/1.1 200 OK\r\nContent-Length: 10000\r\n\r\n" + b"b" * 10_000
