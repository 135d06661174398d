"""The embedded world's internet: an HTTP proxy on 127.0.0.1 that serves the world's sites.

The world publishes its sources at URLs of reserved ``.test`` host names (``http://idia-world.test/
laion/part-00000.parquet``, ...). A run on the world starts this proxy in the Snakemake process
and sets ``http_proxy`` for its jobs, so img2dataset, requests and huggingface_hub fetch those
URLs exactly as they fetch the web: the URLs in the published files, the downloaded shards and
everything hashed from them carry no port and no path of this machine. Each request is written
to the access log with the client's address.
"""

from __future__ import annotations

import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY")


def _handler(sites: dict[str, Path], log: Path | None):
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _resolve(self) -> Path | None:
            parts = urlsplit(self.path)
            host = (parts.hostname or self.headers.get("Host") or "").split(":")[0].lower()
            root = sites.get(host)
            if root is None:
                return None
            target = (root / unquote(parts.path).lstrip("/")).resolve()
            if not target.is_file() or not target.is_relative_to(root.resolve()):
                return None
            return target

        def _send(self, head_only: bool) -> None:
            target = self._resolve()
            if target is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = target.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            if not head_only:
                self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._send(head_only=False)

        def do_HEAD(self) -> None:  # noqa: N802
            self._send(head_only=True)

        def log_message(self, format: str, *args) -> None:  # noqa: A002
            if log is None:
                return
            line = f"{self.client_address[0]} {format % args}\n"
            with lock, open(log, "a") as handle:
                handle.write(line)

    return Handler


def start(sites: dict[str, str | Path], log: str | Path | None = None) -> tuple[str, object]:
    """Serve ``{host: folder}`` through a proxy on a free port of 127.0.0.1.

    Returns the proxy URL and the server (``server.shutdown()`` stops it). The server thread is a
    daemon: it ends with the process that started it.
    """
    roots = {host.lower(): Path(folder) for host, folder in sites.items()}
    log_path = Path(log) if log else None
    if log_path:
        log_path.parent.mkdir(parents=True, exist_ok=True)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(roots, log_path))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="idia-world-web", daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server


def use_proxy(proxy: str) -> None:
    """Route this process's (and its children's) plain-HTTP requests through ``proxy``."""
    for name in PROXY_VARIABLES:
        os.environ[name] = proxy
    for name in ("no_proxy", "NO_PROXY"):  # a "*" would send the world's hosts around it
        hosts = [h.strip() for h in os.environ.get(name, "").split(",")]
        os.environ[name] = ",".join(h for h in hosts if h and h != "*")
