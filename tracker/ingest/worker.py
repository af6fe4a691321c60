"""gunicorn's gevent worker, answering the GPS apps' one-fix requests in a single write.

A GPS app sends one fix per request, so what gunicorn does around every request weighs as
much as storing the fix. Profiled at 1,000 connections (bench/http_ingest.py under
py-spy), building the WSGI environ and the response object and writing the headers and
the body in two system calls took about a third of the worker's CPU. For the ingest paths
(tracker.ingest.http.match) this worker hands the parsed request to IngestEndpoints with
the few environ keys it reads and sends status line, headers and body in one write.
Every other request, and every ingest request it cannot answer the same way (an access
log to write, `Expect: 100-continue`, a SCRIPT_NAME prefix), takes gunicorn's own path.
The answers are byte for byte what that path sends, `Date` and `Server` included.
"""

from __future__ import annotations

import os
import time
from email.utils import formatdate
from typing import Any

from gunicorn import SERVER, util
from gunicorn.workers.ggevent import GeventWorker

from .http import STATUS_LINES, IngestEndpoints, match


class _HttpDate:
    """The Date header's value, formatted once a second rather than once a request."""

    def __init__(self) -> None:
        self._second = -1
        self._value = ""

    def __call__(self) -> str:
        now = int(time.time())
        if now != self._second:
            self._second, self._value = now, formatdate(now, usegmt=True)
        return self._value


class IngestWorker(GeventWorker):
    """The gevent worker with a short path for the HTTP ingest endpoints."""

    def init_process(self) -> None:
        """Decide once whether the short path applies, then run as the gevent worker."""
        self._http_date = _HttpDate()
        self._endpoints: IngestEndpoints | None = None
        # Only when the application is the tracker (the benchmark's reference app is not),
        # no access log is configured (it needs gunicorn's response object) and no
        # SCRIPT_NAME prefix is to be stripped.
        self._short_path = not self.cfg.accesslog and not os.environ.get("SCRIPT_NAME")
        super().init_process()

    def load_wsgi(self) -> None:
        """Load the application and find its ingest endpoints."""
        super().load_wsgi()
        extensions = getattr(self.wsgi, "extensions", {})
        endpoints = extensions.get("ingest_endpoints")
        self._endpoints = endpoints if isinstance(endpoints, IngestEndpoints) else None
        if self._endpoints is not None:
            state = "on" if self._short_path else "off (access log or SCRIPT_NAME set)"
            self.log.info("short path for the HTTP ingest endpoints: %s", state)

    def handle_request(self, listener_name: Any, req: Any, sock: Any, addr: Any) -> Any:
        """Answer an ingest request directly; hand everything else to gunicorn."""
        endpoints = self._endpoints
        if endpoints is None or not self._short_path or req._expected_100_continue:
            return super().handle_request(listener_name, req, sock, addr)
        path = util.unquote_to_wsgi_str(req.path)
        route = match(path)
        if route is None:
            return super().handle_request(listener_name, req, sock, addr)
        self.nr += 1
        if self.nr >= self.max_requests and self.alive:
            self.log.info("Autorestarting worker after current request.")
            self.alive = False
        environ: dict[str, Any] = {
            "REQUEST_METHOD": req.method,
            "PATH_INFO": path,
            "QUERY_STRING": req.query,
            "wsgi.input": req.body,
            "wsgi.input_terminated": True,
        }
        for name, value in req.headers:
            if name == "CONTENT-TYPE":
                environ["CONTENT_TYPE"] = value
            elif name == "CONTENT-LENGTH":
                environ["CONTENT_LENGTH"] = value
            elif name == "AUTHORIZATION":
                environ["HTTP_AUTHORIZATION"] = value
        status, headers, body = endpoints.respond(environ, route)
        close = not self.alive or not self.cfg.keepalive or req.should_close()
        head = "".join(
            [
                f"HTTP/{req.version[0]}.{req.version[1]} {STATUS_LINES[status]}\r\n",
                f"Server: {SERVER}\r\n",
                f"Date: {self._http_date()}\r\n",
                "Connection: close\r\n" if close else "Connection: keep-alive\r\n",
                *[f"{name}: {value}\r\n" for name, value in headers],
                "\r\n",
            ]
        )
        answer = head.encode("latin-1") + body
        # One send() nearly always takes the few hundred bytes whole; gevent's sendall()
        # would first ask the kernel for the send buffer's size, on every request.
        sent = sock.send(answer)
        if sent < len(answer):
            sock.sendall(memoryview(answer)[sent:])
        if close:
            raise StopIteration
        return True
