"""Serving `/metrics`: prometheus_client's own HTTP server, in a thread beside kopf's loop (and
its liveness endpoint), so that a scrape never waits on the operator's event loop."""

from __future__ import annotations

import errno
import threading

from prometheus_client import start_http_server

_started: set[tuple[str, int]] = set()
_lock = threading.Lock()


class MetricsServerError(Exception):
    """The metrics endpoint cannot be served; the message is one line that says why."""


def serve(address: str, port: int) -> bool:
    """Serves the default registry at http://ADDRESS:PORT/metrics. Returns False when this
    process serves it there already (the CLI starts it before kopf, whose startup handler
    would start it otherwise). Raises MetricsServerError when the port cannot be bound."""
    with _lock:
        if (address, port) in _started:
            return False
        try:
            start_http_server(port, addr=address)
        except OSError as err:
            where = f"{address}:{port}"
            if err.errno == errno.EADDRINUSE:
                raise MetricsServerError(
                    f"the metrics port {where} is in use by another process: give a free one "
                    "with --metrics-port (AIOPS_METRICS_PORT)"
                ) from None
            raise MetricsServerError(
                f"cannot serve metrics on {where}: {err.strerror or err}"
            ) from None
        _started.add((address, port))
        return True
