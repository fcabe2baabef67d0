"""Fixtures for the OpenTelemetry tests: SDK providers whose spans and metrics stay in
memory, read back as the exporters would send them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


class Telemetry:
    """A tracer provider and a meter provider of the SDK, and what they recorded."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    @property
    def providers(self) -> dict[str, Any]:
        """The keyword arguments that hand both providers to a client."""
        return {"tracer_provider": self.tracer_provider, "meter_provider": self.meter_provider}

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        """The finished spans, in the order they ended (only ``name``'s if given)."""
        found = list(self.exporter.get_finished_spans())
        return found if name is None else [s for s in found if s.name == name]

    def span(self, name: str) -> ReadableSpan:
        """The one finished span named ``name``."""
        found = self.spans(name)
        assert len(found) == 1, f"expected one span {name!r}, got {[s.name for s in self.spans()]}"
        return found[0]

    def metrics(self) -> dict[str, tuple[str, list[Any]]]:
        """Every metric collected now: name -> (unit, data points)."""
        data = self.reader.get_metrics_data()
        out: dict[str, tuple[str, list[Any]]] = {}
        if data is None:
            return out
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    out[metric.name] = (metric.unit, list(metric.data.data_points))
        return out

    def points(self, name: str, **attributes: Any) -> list[Any]:
        """The data points of ``name`` whose attributes include ``attributes``."""
        _, found = self.metrics().get(name, ("", []))
        return [p for p in found if _includes(p.attributes, attributes)]

    def total(self, name: str, **attributes: Any) -> float:
        """A counter's sum over the points matching ``attributes``."""
        return sum(p.value for p in self.points(name, **attributes))

    def close(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def _includes(found: Mapping[str, Any] | None, wanted: Mapping[str, Any]) -> bool:
    have = dict(found or {})
    return all(have.get(key) == value for key, value in wanted.items())


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    recorded = Telemetry()
    yield recorded
    recorded.close()
