"""``--otel-console``: the spans of a command's calls, and its metrics, printed on stderr.

For a person who wants to see a trace without running a collector.  The clients the
command makes use an OpenTelemetry SDK tracer provider whose spans are printed as each
ends (one line per span, its events indented below), and a meter provider read once when
the command is over.  stdout stays the command's result.  It needs ``opentelemetry-sdk``
(not a dependency of the command line: ``pip install opentelemetry-sdk``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any

from .. import _otel
from .._text import printable
from ._failures import EXIT_USAGE, Failure

__all__ = ["console_telemetry", "metric_lines", "span_line"]

# Said by the span's name already, or the same on every line.
_UNSHOWN = frozenset({"rpc.system", "rpc.service", "rpc.method", "server.port"})

_MISSING_SDK = (
    "--otel-console needs the OpenTelemetry SDK, which the command line does not install: "
    "pip install opentelemetry-sdk"
)


def console_telemetry(stream: IO[str]) -> Callable[[], None]:
    """Make the command's clients trace and measure onto ``stream``; returns what ends it
    (prints the metrics, flushes the spans, lets go of the providers)."""
    try:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
    except ImportError:
        raise Failure(_MISSING_SDK, kind="setup", exit_code=EXIT_USAGE) from None
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(
        SimpleSpanProcessor(ConsoleSpanExporter(out=stream, formatter=span_line))
    )
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    token = _otel.command_providers.set((tracer_provider, meter_provider))

    def finish() -> None:
        _otel.command_providers.reset(token)
        tracer_provider.shutdown()
        data = reader.get_metrics_data()
        if data is not None:
            stream.writelines(metric_lines(data))
            stream.flush()
        meter_provider.shutdown()

    return finish


def span_line(span: Any) -> str:
    """One span as a line: name, outcome, duration, ids, attributes; events below it."""
    context = span.get_span_context()
    parent = f"{span.parent.span_id:016x}" if span.parent is not None else "-"
    elapsed = ((span.end_time or span.start_time) - span.start_time) / 1e6
    status = span.status
    # OpenTelemetry leaves a span's status unset unless something failed.
    outcome = "error" if status.status_code.name == "ERROR" else "ok"
    if status.description:
        outcome += f" ({printable(status.description, 300)})"
    shown = {k: v for k, v in (span.attributes or {}).items() if k not in _UNSHOWN}
    lines = [
        f"span {span.name}  {outcome}  {elapsed:.1f} ms  trace {context.trace_id:032x} "
        f"span {context.span_id:016x} parent {parent}  {_pairs(shown)}"
    ]
    for event in span.events:
        told = {k: v for k, v in event.attributes.items() if k != "exception.stacktrace"}
        lines.append(f"  event {event.name}  {_pairs(told)}")
    return os.linesep.join(lines) + os.linesep


def metric_lines(data: Any) -> Iterator[str]:
    """Every data point of some collected metrics, a line each."""
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    yield (
                        f"metric {metric.name} {_point(point, metric.unit)}  "
                        + _pairs(point.attributes)
                        + os.linesep
                    )


def _point(point: Any, unit: str) -> str:
    if hasattr(point, "count") and hasattr(point, "sum"):
        return (
            f"count={point.count} sum={_number(point.sum)} {unit} "
            f"min={_number(point.min)} max={_number(point.max)}"
        )
    return f"{point.value} {unit}"


def _pairs(attributes: Mapping[str, Any] | None) -> str:
    if not attributes:
        return ""
    return " ".join(f"{key}={_value(value)}" for key, value in attributes.items())


def _value(value: Any) -> str:
    if isinstance(value, str):
        text = printable(value, 300)
        return f'"{text}"' if (" " in text or not text) else text
    if isinstance(value, float):
        return _number(value)
    return str(value)


def _number(value: float) -> str:
    """``0.000045`` rather than ``4.5e-05``: most of these are seconds."""
    return f"{value:.6f}".rstrip("0").rstrip(".") or "0"
