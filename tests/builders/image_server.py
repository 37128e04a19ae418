"""A local HTTP server for image-URL checks: ``/<name>.png`` answers a PNG, ``/page.html``
an HTML page, ``/slow.png`` answers after ``slow_seconds``, anything else 404. It counts
requests in flight (``peak``), to see that checks run with bounded concurrency."""

from __future__ import annotations

import io
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image


def png_bytes(shade: int = 120, size: int = 8) -> bytes:
    """A small PNG."""
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (shade, 60, 200 - shade // 2)).save(buffer, "PNG")
    return buffer.getvalue()


class ImageServer:
    """Serves on 127.0.0.1; ``url(path)`` is an absolute URL; use as a context manager."""

    def __init__(self, *, delay: float = 0.0, slow_seconds: float = 3.0) -> None:
        server = self
        self.delay, self.slow_seconds = delay, slow_seconds
        self.in_flight = self.peak = self.requests = 0
        self.lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                return None

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                with server.lock:
                    server.in_flight += 1
                    server.requests += 1
                    server.peak = max(server.peak, server.in_flight)
                try:
                    time.sleep(server.delay)
                    path = self.path.split("?", 1)[0]
                    if path == "/slow.png":
                        time.sleep(server.slow_seconds)
                    if path.endswith(".png") and not path.startswith("/missing"):
                        self._send(200, "image/png", png_bytes(len(path) * 7 % 200))
                    elif path == "/page.html":
                        self._send(200, "text/html", b"<html>not an image</html>")
                    else:
                        self._send(404, "text/plain", b"not found")
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    with server.lock:
                        server.in_flight -= 1

            def _send(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return self.base + path

    def __enter__(self) -> ImageServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
