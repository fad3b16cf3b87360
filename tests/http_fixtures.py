"""A scriptable HTTP server on 127.0.0.1 for download tests (never the internet).

``LocalHTTPServer`` serves ``files`` (URL path -> bytes) with a correct
Content-Length and answers 404 for anything else; ``behaviours`` (URL path ->
callable taking the request handler) override a path to misbehave: see
``status``, ``stall``, ``stall_mid_body`` and ``short_body``. Every request path
is appended to ``requests``. Stalling handlers wait on ``release``, which
``stop`` sets so that the server shuts down promptly.
"""

import http.server
import socket
import threading


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        owner = self.server.owner
        with owner.lock:
            owner.requests.append(self.path)
        behaviour = owner.behaviours.get(self.path)
        if behaviour is not None:
            behaviour(self)
            return
        body = owner.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_body(body)

    def send_body(self, body, length=None):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def log_message(self, format, *args):
        pass


class LocalHTTPServer:
    """Threaded HTTP server on a free port of 127.0.0.1; use as a context manager."""

    def __init__(self):
        self.files = {}
        self.behaviours = {}
        self.requests = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self):
        """Base URL, ending in a slash."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # Behaviours: each returns a callable for ``behaviours[path] = ...``.

    @staticmethod
    def status(code):
        """Answer with an HTTP error status."""

        def behave(handler):
            handler.send_error(code)

        return behave

    def stall(self):
        """Accept the request, then send nothing until released."""

        def behave(handler):
            self.release.wait(timeout=30)

        return behave

    def stall_mid_body(self, body):
        """Send the headers and half the body, then stall until released."""

        def behave(handler):
            handler.send_body(body[: len(body) // 2], length=len(body))
            self.release.wait(timeout=30)

        return behave

    @staticmethod
    def short_body(body):
        """Announce the full length, send half of the body and close the connection."""

        def behave(handler):
            handler.send_body(body[: len(body) // 2], length=len(body))
            handler.close_connection = True

        return behave


def closed_port_url():
    """A base URL on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"
