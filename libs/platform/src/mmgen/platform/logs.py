"""JSON logs, one line per record, carrying the current trace and span ids.

Log shippers parse one JSON object per line; `trace_id`/`span_id` let an operator jump from a
log line to its trace. Records keep their `extra=` fields as members. Never log personal data:
ids yes, contents no.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from opentelemetry import trace

_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service_name: str | None = None) -> None:
        super().__init__()
        self.service_name = service_name

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.service_name:
            payload["service"] = self.service_name
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            payload["trace_id"] = format(span_context.trace_id, "032x")
            payload["span_id"] = format(span_context.span_id, "016x")
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_") and key not in payload:
                payload[key] = value
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            payload["stack"] = self.formatStack(record.stack_info)
        return json.dumps(payload, default=str, ensure_ascii=False)


class _PlatformHandler(logging.StreamHandler[TextIO]):
    """Marks the handler we installed, so configuring again replaces rather than duplicates."""


def configure_logging(
    service_name: str | None = None,
    *,
    level: str | int = "INFO",
    json_lines: bool = True,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Route the root logger to one stderr handler (JSON lines unless `json_lines=False`)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _PlatformHandler):
            root.removeHandler(handler)
    handler = _PlatformHandler(stream or sys.stderr)
    handler.setFormatter(
        JsonFormatter(service_name)
        if json_lines
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else level.upper())
    return handler
