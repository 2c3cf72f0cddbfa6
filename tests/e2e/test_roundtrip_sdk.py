"""Round trip with the real OpenTelemetry Python SDK and its exporters.

OTLP: the SDK's gRPC and HTTP exporters send protobuf. (The Python SDK has no OTLP/JSON
exporter; the JSON path is covered by the hand-built requests in test_roundtrip_handbuilt.py.)
Every span is read back through the query API and compared with what the SDK produced:
exactly (against the SDK's own OTLP encoding of the captured ReadableSpans) and
semantically (ids, names, kinds, times, status, typed attributes, events, links, resource,
scope), so a failure names the field that differs.

Zipkin: the SDK's zipkin-json exporter; asserted as the collector's Zipkin v2 translator maps it.
"""

from __future__ import annotations

import json
import time

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.exporter.zipkin.json import ZipkinExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status as SdkStatus,
    StatusCode,
    TraceFlags,
    TraceState,
    set_span_in_context,
)

from helpers import Span, all_spans, assert_same_spans, attrs_py
from sdk_util import SdkPipeline

OTLP_KIND = {
    SpanKind.INTERNAL: Span.SPAN_KIND_INTERNAL,
    SpanKind.SERVER: Span.SPAN_KIND_SERVER,
    SpanKind.CLIENT: Span.SPAN_KIND_CLIENT,
    SpanKind.PRODUCER: Span.SPAN_KIND_PRODUCER,
    SpanKind.CONSUMER: Span.SPAN_KIND_CONSUMER,
}
OTLP_STATUS = {StatusCode.UNSET: 0, StatusCode.OK: 1, StatusCode.ERROR: 2}

# Every attribute type the SDK can express: str, bool, int, float and homogeneous sequences.
SPAN_ATTRS = {
    "str": "hello",
    "str.empty": "",
    "str.unicode": "日本語 עברית مرحبا 😀 Ünïcødé",
    "bool.true": True,
    "bool.false": False,
    "int": 42,
    "int.neg": -7,
    "int.zero": 0,
    "int.max": 2**63 - 1,
    "int.min": -(2**63),
    "float": 3.141592653589793,
    "float.neg": -2.5e-10,
    "float.huge": 1.7976931348623157e308,
    "float.whole": 2.0,
    "seq.str": ["a", "", "ü😀"],
    "seq.bool": [True, False, True],
    "seq.int": [1, -2, 2**63 - 1],
    "seq.float": [1.5, -0.25, 1e100],
    "seq.empty": [],
    "ключ.键.🔑": "unicode key",
}
RESOURCE_ATTRS = {
    "service.name": "sdk-roundtrip-svc",
    "service.version": "1.2.3",
    "deployment.environment": "e2e",
    "res.int": 7,
    "res.bool": True,
    "res.float": 0.5,
    "res.seq": ["x", "y"],
    "res.ünïcode": "値",
}
SCOPE_ATTRS = {"scope.str": "lib", "scope.int": 3, "scope.bool": False, "scope.seq": [1.0, 2.0]}


def py_attr(v):
    """What an SDK attribute value must come back as, with its type."""
    if isinstance(v, bool):
        return ("bool", v)
    if isinstance(v, int):
        return ("int", v)
    if isinstance(v, float):
        return ("double", v)
    if isinstance(v, str):
        return ("string", v)
    if isinstance(v, (list, tuple)):
        return ("array", [py_attr(x) for x in v])
    raise TypeError(type(v))


def py_attrs(d) -> dict:
    return {k: py_attr(v) for k, v in (d or {}).items()}


def produce_spans(tracer) -> int:
    """One trace with every span kind, events, links, statuses; returns the trace id."""
    t0 = time.time_ns()
    root = tracer.start_span("GET /checkout 🛒", kind=SpanKind.SERVER, attributes=SPAN_ATTRS, start_time=t0)
    root.add_event("request.received", {"http.method": "GET", "body.bytes": 512, "gzip": True, "ratio": 0.75,
                                        "parts": ["a", "b"]}, timestamp=t0 + 10)
    trace_id = root.get_span_context().trace_id
    ctx = set_span_in_context(root)

    internal = tracer.start_span("compute totals", context=ctx, kind=SpanKind.INTERNAL,
                                 attributes={"items": 3}, start_time=t0 + 1_000)
    internal.add_event("cache.miss", {"cache.key": "user:42", "attempt": 2}, timestamp=t0 + 1_500)
    internal.add_event("no attributes", timestamp=t0 + 1_600)
    internal.set_status(SdkStatus(StatusCode.OK))
    internal.end(end_time=t0 + 5_000)

    linked = SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState([("vendor", "v1"), ("other", "x")]),
    )
    client = tracer.start_span(
        "POST payments",
        context=ctx,
        kind=SpanKind.CLIENT,
        links=[
            Link(linked, {"link.reason": "retry-of", "link.n": 3, "link.flag": True, "link.seq": ["p", "q"]}),
            Link(internal.get_span_context()),
        ],
        start_time=t0 + 6_000,
    )
    client.set_attribute("peer.service", "payments")
    try:
        raise ValueError("card declined: ❌")
    except ValueError as exc:
        client.record_exception(exc, timestamp=t0 + 7_000)
    client.set_status(SdkStatus(StatusCode.ERROR, "downstream failed: 💥 timeout"))
    client.end(end_time=t0 + 9_000)

    producer = tracer.start_span("publish orders", context=ctx, kind=SpanKind.PRODUCER, start_time=t0 + 9_500,
                                 attributes={"messaging.system": "kafka"})
    producer.end(end_time=t0 + 9_900)

    # A consumer whose parent is a remote span context (sets the "parent is remote" flag bits).
    remote_parent = SpanContext(trace_id=trace_id, span_id=0x1122334455667788, is_remote=True,
                                trace_flags=TraceFlags(TraceFlags.SAMPLED))
    consumer = tracer.start_span("consume orders", context=set_span_in_context(NonRecordingSpan(remote_parent)),
                                 kind=SpanKind.CONSUMER, start_time=t0 + 10_000)
    consumer.end(end_time=t0 + 12_345)

    root.end(end_time=t0 + 20_000_000)
    return trace_id


def check_semantics(got, sdk_spans, trace_id: int):
    """Field-by-field comparison with the SDK's ReadableSpans (independent of the SDK encoder)."""
    by_id = {sp.span_id: (res, scope, sp) for res, scope, sp in all_spans(got)}
    assert len(by_id) == len(sdk_spans)
    for s in sdk_spans:
        ctx = s.get_span_context()
        key = ctx.span_id.to_bytes(8, "big")
        assert key in by_id, f"span {s.name!r} missing"
        res, scope, sp = by_id[key]
        where = f"span {s.name!r}"
        assert sp.trace_id == trace_id.to_bytes(16, "big"), where
        assert sp.name == s.name, where
        assert sp.kind == OTLP_KIND[s.kind], f"{where}: kind {sp.kind}"
        assert sp.start_time_unix_nano == s.start_time, where
        assert sp.end_time_unix_nano == s.end_time, where
        expected_parent = s.parent.span_id.to_bytes(8, "big") if s.parent else b""
        assert sp.parent_span_id == expected_parent, where
        assert sp.status.code == OTLP_STATUS[s.status.status_code], f"{where}: status {sp.status}"
        assert sp.status.message == (s.status.description or ""), where
        assert attrs_py(sp.attributes) == py_attrs(s.attributes), f"{where}: attributes"
        assert [(e.name, e.time_unix_nano, attrs_py(e.attributes)) for e in sp.events] == [
            (e.name, e.timestamp, py_attrs(e.attributes)) for e in s.events
        ], f"{where}: events"
        assert [(l.trace_id, l.span_id, attrs_py(l.attributes)) for l in sp.links] == [
            (l.context.trace_id.to_bytes(16, "big"), l.context.span_id.to_bytes(8, "big"), py_attrs(l.attributes))
            for l in s.links
        ], f"{where}: links"
        # W3C trace flags in the low byte; 0x100 = "is remote known", 0x200 = parent is remote.
        assert sp.flags & 0x100, f"{where}: flags {sp.flags:#x}"
        assert bool(sp.flags & 0x200) == bool(s.parent is not None and s.parent.is_remote), f"{where}: flags {sp.flags:#x}"
        assert attrs_py(res.attributes) == py_attrs(RESOURCE_ATTRS), f"{where}: resource"
        assert scope.name == "clew.e2e.sdk" and scope.version == "4.5.6", f"{where}: scope {scope}"
        assert attrs_py(scope.attributes) == py_attrs(SCOPE_ATTRS), f"{where}: scope attributes"


def run_sdk_roundtrip(server, exporter, tenant):
    pipe = SdkPipeline(exporter, RESOURCE_ATTRS, resource_schema_url="https://opentelemetry.io/schemas/1.26.0")
    try:
        tracer = pipe.provider.get_tracer("clew.e2e.sdk", "4.5.6", schema_url="https://example.com/scope/1.0",
                                          attributes=SCOPE_ATTRS)
        trace_id = produce_spans(tracer)
        sdk_spans = pipe.flush_and_check()
    finally:
        pipe.shutdown()
    assert len(sdk_spans) == 5
    assert {s.kind for s in sdk_spans} == set(SpanKind)

    got = server.fetch_trace(f"{trace_id:032x}", tenant=tenant)
    # Exact: identical to the SDK's own OTLP encoding of the same spans (resource and scope
    # schema urls included), attribute order aside.
    assert_same_spans(got, encode_spans(sdk_spans))
    check_semantics(got, sdk_spans, trace_id)
    # Stored under the exporter's tenant, not the default one.
    assert server.get_trace(f"{trace_id:032x}").status_code == 404


@pytest.mark.parametrize("compression", [None, grpc.Compression.Gzip], ids=["plain", "gzip"])
def test_sdk_otlp_grpc_roundtrip(server, compression):
    exporter = GrpcExporter(endpoint=f"http://{server.grpc_target}", insecure=True, timeout=10,
                            headers=(("x-scope-orgid", "sdk-grpc"),), compression=compression)
    run_sdk_roundtrip(server, exporter, "sdk-grpc")


@pytest.mark.parametrize("compression", [HttpCompression.NoCompression, HttpCompression.Gzip], ids=["plain", "gzip"])
def test_sdk_otlp_http_roundtrip(server, compression):
    exporter = HttpExporter(endpoint=server.traces_url, timeout=10, headers={"X-Scope-OrgID": "sdk-http"},
                            compression=compression)
    run_sdk_roundtrip(server, exporter, "sdk-http")


def test_sdk_zipkin_roundtrip(server):
    """The SDK's Zipkin v2 JSON exporter; expectations follow the collector's zipkin v2 translator:
    localEndpoint.serviceName -> resource service.name; kinds 1:1 (INTERNAL is sent without a kind
    -> UNSPECIFIED); otel.status_code -> status, `error` tag -> ERROR; annotations -> events;
    µs -> ns with end = start + duration; tags -> string attributes."""
    exporter = ZipkinExporter(endpoint=server.zipkin_url, timeout=10)
    pipe = SdkPipeline(exporter, {"service.name": "zipkin-sdk-svc"})
    try:
        tracer = pipe.provider.get_tracer("clew.e2e.zipkin", "0.1")
        t0 = time.time_ns()
        root = tracer.start_span("zipkin root", kind=SpanKind.SERVER, start_time=t0,
                                 attributes={"http.route": "/z", "flag": True, "n": 12, "x": 1.5, "l": ["a", "b"]})
        trace_id = root.get_span_context().trace_id
        ctx = set_span_in_context(root)
        spans = []
        for i, kind in enumerate([SpanKind.CLIENT, SpanKind.PRODUCER, SpanKind.CONSUMER, SpanKind.INTERNAL]):
            s = tracer.start_span(f"child {kind.name.lower()}", context=ctx, kind=kind, start_time=t0 + 1_234_567 * (i + 1))
            s.set_attribute("child.index", i)
            if kind == SpanKind.CLIENT:
                s.set_status(SdkStatus(StatusCode.ERROR, "zipkin boom"))
            if kind == SpanKind.PRODUCER:
                s.set_status(SdkStatus(StatusCode.OK))
            s.add_event("evt", {"k": "v"}, timestamp=t0 + 1_234_567 * (i + 1) + 5_500)
            s.end(end_time=t0 + 1_234_567 * (i + 1) + 987_654)
            spans.append(s)
        root.end(end_time=t0 + 50_000_000)
        sdk_spans = pipe.flush_and_check()
    finally:
        pipe.shutdown()

    got = server.fetch_trace(f"{trace_id:032x}")
    by_id = {sp.span_id: (res, sp) for res, _scope, sp in all_spans(got)}
    assert len(by_id) == len(sdk_spans) == 5
    us = lambda ns: (ns + 500) // 1000  # the exporter's rounding
    zipkin_kind = {SpanKind.SERVER: 2, SpanKind.CLIENT: 3, SpanKind.PRODUCER: 4, SpanKind.CONSUMER: 5,
                   SpanKind.INTERNAL: 0}
    for s in sdk_spans:
        res, sp = by_id[s.get_span_context().span_id.to_bytes(8, "big")]
        where = f"zipkin span {s.name!r}"
        assert sp.trace_id == trace_id.to_bytes(16, "big"), where
        assert sp.name == s.name, where
        assert sp.parent_span_id == (s.parent.span_id.to_bytes(8, "big") if s.parent else b""), where
        assert attrs_py(res.attributes).get("service.name") == ("string", "zipkin-sdk-svc"), f"{where}: {res}"
        assert sp.kind == zipkin_kind[s.kind], f"{where}: kind {sp.kind}"
        start = us(s.start_time) * 1000
        assert sp.start_time_unix_nano == start, where
        assert sp.end_time_unix_nano == start + us(s.end_time - s.start_time) * 1000, where
        expected_code = {StatusCode.UNSET: 0, StatusCode.OK: 1, StatusCode.ERROR: 2}[s.status.status_code]
        assert sp.status.code == expected_code, f"{where}: status {sp.status}"
        attrs = attrs_py(sp.attributes)
        for k, v in s.attributes.items():
            if isinstance(v, bool):
                text = str(v).lower()
            elif isinstance(v, (list, tuple)):
                text = json.dumps([str(x) for x in v], separators=(",", ":"))
            else:
                text = str(v)
            assert attrs.get(k) == ("string", text), f"{where}: tag {k} -> {attrs.get(k)}"
        assert "otel.status_code" not in attrs, f"{where}: otel.status_code should become the status"
        assert len(sp.events) == len(s.events), f"{where}: events {sp.events}"
        for ev, sev in zip(sp.events, s.events):
            assert ev.time_unix_nano == us(sev.timestamp) * 1000, where
            assert sev.name in ev.name, f"{where}: event name {ev.name!r}"
