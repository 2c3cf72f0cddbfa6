"""Helpers for driving the real OpenTelemetry Python SDK against Clew."""

from __future__ import annotations

import threading

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


class RecordingExporter(SpanExporter):
    """Wraps a real exporter and records each export's result."""

    def __init__(self, inner: SpanExporter):
        self.inner = inner
        self.results: list[SpanExportResult] = []
        self.exported = 0
        self._lock = threading.Lock()

    def export(self, spans):
        result = self.inner.export(spans)
        with self._lock:
            self.results.append(result)
            self.exported += len(spans)
        return result

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class SdkPipeline:
    """A TracerProvider whose spans go both to a real exporter (through a
    BatchSpanProcessor, flushed explicitly) and to an in-memory exporter that keeps the
    ReadableSpans we compare against."""

    def __init__(self, exporter: SpanExporter, resource_attrs: dict, resource_schema_url: str | None = None):
        self.resource = Resource(resource_attrs, schema_url=resource_schema_url)
        self.provider = TracerProvider(resource=self.resource)
        self.memory = InMemorySpanExporter()
        self.recorder = RecordingExporter(exporter)
        self.provider.add_span_processor(SimpleSpanProcessor(self.memory))
        self.provider.add_span_processor(BatchSpanProcessor(self.recorder, schedule_delay_millis=60_000))

    def flush_and_check(self):
        assert self.provider.force_flush(20_000), "force_flush timed out"
        spans = list(self.memory.get_finished_spans())
        assert spans, "no spans were produced"
        assert self.recorder.exported == len(spans), (
            f"exporter saw {self.recorder.exported} spans, {len(spans)} were finished"
        )
        assert self.recorder.results and all(r == SpanExportResult.SUCCESS for r in self.recorder.results), (
            f"export results: {self.recorder.results}"
        )
        return spans

    def shutdown(self):
        self.provider.shutdown()
