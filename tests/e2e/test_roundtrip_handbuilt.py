"""Hand-built OTLP requests (generated protobuf classes) covering what the SDK can't express:
bytes values, nested kvlists, mixed and empty arrays, trace state, span/link flags, every
dropped count, int64 extremes, awkward doubles, unicode (emoji, CJK, RTL) and JSON escapes,
schema urls, scope attributes, multiple resources/scopes in one trace, span kind
UNSPECIFIED and an empty span name.

The same request goes through OTLP/HTTP protobuf, OTLP/HTTP JSON (our own OTLP/JSON
encoding: hex ids, int64 as strings, enums as integers) and gRPC, each with and without
gzip; the trace read back must be structurally identical.
"""

from __future__ import annotations

import base64
import json

import grpc
import pytest
from google.protobuf import json_format

from helpers import (
    ExportRequest,
    ExportResponse,
    InstrumentationScope,
    Resource,
    ResourceSpans,
    ScopeSpans,
    Span,
    Status,
    assert_full_success,
    assert_same_spans,
    check_json_conventions,
    kvs,
    otlp_json_to_proto,
    proto_to_otlp_json,
    rand_span_id,
    rand_trace_id,
)

T0 = 1_700_000_000_123_456_789
WEIRD_STRING = 'quote " backslash \\ slash / newline \n tab \t cr \r nul \x00 bell \x07 del \x7f'
ALL_VALUES = {
    "string": "plain",
    "string.empty": "",
    "string.unicode": "你好，世界 · שלום עולם · مرحبا بالعالم · Здравствуй · 🌍🚀👩‍👩‍👧",
    "string.escapes": WEIRD_STRING,
    "string.long": "x" * 10_000,
    "bool.true": True,
    "bool.false": False,
    "int.zero": 0,
    "int.min": -(2**63),
    "int.max": 2**63 - 1,
    "int.js_unsafe": 2**53 + 1,
    "double.pi": 3.141592653589793,
    "double.tiny": 5e-324,
    "double.max": 1.7976931348623157e308,
    "double.negative": -1.5e-300,
    "double.whole": 1.0,
    "double.zero": 0.0,
    "bytes": bytes(range(256)),
    "bytes.empty": b"",
    "array.mixed": [1, "two", 3.5, False, b"\x07\x08", [1, [2, []]], {"k": "v", "n": {"deep": True}}],
    "array.empty": [],
    "array.strings": ["a", "", "ü"],
    "kvlist": {"a": 1, "b": {"c": [1, "two", 3.0], "d": {}}, "e": b"\xff", "🔑": "値"},
    "kvlist.empty": {},
    "ключ 🔑 键 مفتاح": "unicode key",
}


def rich_request(tid: bytes) -> ExportRequest:
    root, c1, c2, c3, c4, c5, c6 = (rand_span_id() for _ in range(7))
    other_trace = rand_trace_id()
    spans_scope_a = [
        Span(
            trace_id=tid, span_id=root, trace_state="rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
            flags=0x301, name="GET /用户/🚀 مرحبا", kind=Span.SPAN_KIND_SERVER,
            start_time_unix_nano=T0, end_time_unix_nano=T0 + 987_654_321,
            attributes=kvs(ALL_VALUES), dropped_attributes_count=5,
            events=[
                Span.Event(time_unix_nano=T0 + 1, name="exception ⚠",
                           attributes=kvs({"exception.type": "ValueError", "exception.message": WEIRD_STRING,
                                           "n": -1, "b": b"\x00", "arr": [1.5, "x"]}),
                           dropped_attributes_count=1),
                Span.Event(time_unix_nano=T0 + 2, name=""),
            ],
            dropped_events_count=7,
            links=[
                Span.Link(trace_id=other_trace, span_id=rand_span_id(), trace_state="k=v,vendor=opaque",
                          attributes=kvs({"link.kind": "follows_from", "link.n": 2**62, "link.kv": {"x": [True]}}),
                          dropped_attributes_count=4, flags=0x301),
                Span.Link(trace_id=tid, span_id=c1),
            ],
            dropped_links_count=2,
            status=Status(code=Status.STATUS_CODE_ERROR, message="❌ failed: مشكلة \"quoted\""),
        ),
        Span(trace_id=tid, span_id=c1, parent_span_id=root, flags=0x100, name="client call",
             kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=T0 + 10, end_time_unix_nano=T0 + 20,
             status=Status(code=Status.STATUS_CODE_OK, message="ok but with a message")),
        Span(trace_id=tid, span_id=c2, parent_span_id=root, name="produce", kind=Span.SPAN_KIND_PRODUCER,
             start_time_unix_nano=T0 + 30, end_time_unix_nano=T0 + 40, attributes=kvs({"p": 1})),
        Span(trace_id=tid, span_id=c3, parent_span_id=c2, flags=0x300, name="consume", kind=Span.SPAN_KIND_CONSUMER,
             start_time_unix_nano=T0 + 50, end_time_unix_nano=T0 + 60),
        # Kind UNSPECIFIED, empty name, zero duration: all valid.
        Span(trace_id=tid, span_id=c4, parent_span_id=root, name="", kind=Span.SPAN_KIND_UNSPECIFIED,
             start_time_unix_nano=T0 + 70, end_time_unix_nano=T0 + 70),
    ]
    resource_a = Resource(
        attributes=kvs({"service.name": "hand-built ✓", "host.id": b"\xde\xad\xbe\xef",
                        "res.nested": {"k8s": {"pod": "p-1", "ports": [80, 443]}}, "res.empty": []}),
        dropped_attributes_count=3,
    )
    return ExportRequest(resource_spans=[
        ResourceSpans(
            resource=resource_a,
            schema_url="https://opentelemetry.io/schemas/1.26.0",
            scope_spans=[
                ScopeSpans(
                    scope=InstrumentationScope(name="hand.scope ✨", version="9.9.9-β",
                                               attributes=kvs({"scope.k": "v", "scope.n": -1, "scope.b": b"\x01"}),
                                               dropped_attributes_count=2),
                    schema_url="https://example.com/scope-schema/2",
                    spans=spans_scope_a,
                ),
                ScopeSpans(
                    scope=InstrumentationScope(name="second scope"),
                    spans=[Span(trace_id=tid, span_id=c5, parent_span_id=root, name="internal 🧮",
                                kind=Span.SPAN_KIND_INTERNAL, start_time_unix_nano=T0 + 80,
                                end_time_unix_nano=T0 + 90, attributes=kvs({"where": "scope 2"}))],
                ),
            ],
        ),
        # A second resource with no attributes and an empty scope; far-future timestamps.
        ResourceSpans(
            resource=Resource(),
            scope_spans=[ScopeSpans(
                scope=InstrumentationScope(),
                spans=[Span(trace_id=tid, span_id=c6, parent_span_id=root, name="no resource",
                            kind=Span.SPAN_KIND_INTERNAL, start_time_unix_nano=4_102_444_800_000_000_000,
                            end_time_unix_nano=4_102_444_800_000_000_001)],
            )],
        ),
    ])


def send(server, req: ExportRequest, variant: str):
    if variant.startswith("http-protobuf"):
        return server.export_http_proto(req, gzip_body=variant.endswith("gzip"))
    if variant.startswith("http-json"):
        doc = proto_to_otlp_json(req)
        gz = variant.endswith("gzip")
        # One variant sends raw UTF-8, the other \u escapes (incl. surrogate pairs for emoji).
        body = json.dumps(doc, ensure_ascii=gz)
        r = server.post_traces(body.encode(), "application/json", gzip_body=gz)
        assert r.status_code == 200, f"HTTP {r.status_code}: {r.text[:500]}"
        assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers
        resp = json.loads(r.text)
        assert isinstance(resp, dict), resp
        return json_format.ParseDict(resp, ExportResponse())
    if variant.startswith("grpc"):
        return server.export_grpc(req, compression=grpc.Compression.Gzip if variant.endswith("gzip") else None)
    raise ValueError(variant)


VARIANTS = ["http-protobuf", "http-protobuf-gzip", "http-json", "http-json-gzip", "grpc", "grpc-gzip"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_handbuilt_roundtrip(server, variant):
    tid = rand_trace_id()
    req = rich_request(tid)
    assert_full_success(send(server, req, variant), variant)
    r = server.get_trace(tid)
    assert r.status_code == 200, f"GET trace: HTTP {r.status_code}"
    assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers
    doc = r.json()
    assert set(doc) <= {"resourceSpans"}, f"unexpected top-level keys {set(doc)}"
    check_json_conventions(doc)
    assert_same_spans(otlp_json_to_proto(doc), req)


def test_json_encoding_of_read_back(server):
    """The query API's JSON: hex ids (lowercase-insensitive), bytes base64, int64 strings, enums ints."""
    tid = rand_trace_id()
    req = rich_request(tid)
    assert_full_success(server.export_http_proto(req))
    doc = server.get_trace(tid).json()
    spans = [sp for rs in doc["resourceSpans"] for ss in rs["scopeSpans"] for sp in ss["spans"]]
    assert len(spans) == 7
    for sp in spans:
        assert sp["traceId"].lower() == tid.hex()
        assert len(sp["spanId"]) == 16
    root = next(sp for sp in spans if sp.get("name") == "GET /用户/🚀 مرحبا")
    attrs = {a["key"]: a["value"] for a in root["attributes"]}
    assert attrs["int.max"] == {"intValue": str(2**63 - 1)}
    assert attrs["int.min"] == {"intValue": str(-(2**63))}
    assert attrs["bytes"] == {"bytesValue": base64.b64encode(bytes(range(256))).decode()}
    assert attrs["string.escapes"] == {"stringValue": WEIRD_STRING}
    assert root["kind"] == 2 and root["status"]["code"] == 2
    assert root["flags"] == 0x301
    assert root["startTimeUnixNano"] == str(T0)
    assert root["links"][0]["traceId"].lower() != tid.hex() and len(root["links"][0]["traceId"]) == 32


def test_comparison_detects_differences(server):
    """Control: the comparison machinery itself detects a difference (guards against a
    vacuous comparison)."""
    tid = rand_trace_id()
    req = rich_request(tid)
    assert_full_success(server.export_grpc(req))
    got = server.fetch_trace(tid)
    changed = ExportRequest()
    changed.CopyFrom(req)
    changed.resource_spans[0].scope_spans[0].spans[0].attributes[0].value.string_value = "different"
    with pytest.raises(AssertionError):
        assert_same_spans(got, changed)
    assert_same_spans(got, req)


def test_spans_of_one_trace_across_requests(server):
    """Spans of one trace sent in separate requests (and over different transports) come back together."""
    tid = rand_trace_id()
    req = rich_request(tid)
    # Split: first resource via HTTP protobuf, second via gRPC.
    first = ExportRequest(resource_spans=[req.resource_spans[0]])
    second = ExportRequest(resource_spans=[req.resource_spans[1]])
    assert_full_success(server.export_http_proto(first))
    assert_full_success(server.export_grpc(second))
    assert_same_spans(server.fetch_trace(tid), req)
    # A short (16 hex) lookup of a 128-bit id is a different trace: absent.
    assert server.get_trace(tid.hex()[16:]).status_code == 404


def json_single_span(tid: bytes, attributes: list) -> dict:
    return {"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": tid.hex(), "spanId": rand_span_id().hex(), "name": "json-values", "kind": 1,
        "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000000000001",
        "attributes": attributes}]}]}]}


def read_back_attributes(server, tid: bytes) -> dict:
    got = server.fetch_trace(tid)
    (sp,) = [sp for rs in got.resource_spans for ss in rs.scope_spans for sp in ss.spans]
    return {kv.key: kv.value for kv in sp.attributes}


def test_json_empty_array_and_kvlist(server):
    """proto3 JSON omits empty repeated fields: {"arrayValue":{}} is an empty array and
    {"kvlistValue":{}} an empty kvlist (this is how protobuf's own JSON printers write them)."""
    tid = rand_trace_id()
    doc = json_single_span(tid, [
        {"key": "empty.array", "value": {"arrayValue": {}}},
        {"key": "empty.kvlist", "value": {"kvlistValue": {}}},
        {"key": "nested", "value": {"arrayValue": {"values": [{"arrayValue": {}}, {"kvlistValue": {}}]}}},
    ])
    r = server.post_traces(json.dumps(doc).encode(), "application/json")
    assert r.status_code == 200, f"HTTP {r.status_code}: {r.text[:300]}"
    attrs = read_back_attributes(server, tid)
    assert attrs["empty.array"].WhichOneof("value") == "array_value" and not attrs["empty.array"].array_value.values
    assert attrs["empty.kvlist"].WhichOneof("value") == "kvlist_value" and not attrs["empty.kvlist"].kvlist_value.values
    inner = attrs["nested"].array_value.values
    assert [v.WhichOneof("value") for v in inner] == ["array_value", "kvlist_value"]


DOUBLES = [-1.5e-300, 0.1, 1 / 3, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308,
           123456789.12345679, 9007199254740993.0, -0.0001, 6.02214076e23, 1e-7, 2.5]


def test_json_numbers_parse_exactly(server):
    """OTLP/JSON doubles must parse to the nearest double (as every conforming JSON parser
    does), and int64 values given as bare JSON numbers must parse exactly."""
    tid = rand_trace_id()
    attributes = [{"key": f"d{i}", "value": {"doubleValue": d}} for i, d in enumerate(DOUBLES)]
    attributes += [{"key": "i.max", "value": {"intValue": 2**63 - 1}},
                   {"key": "i.min", "value": {"intValue": -(2**63)}},
                   {"key": "i.odd", "value": {"intValue": 2**53 + 1}}]
    r = server.post_traces(json.dumps(json_single_span(tid, attributes)).encode(), "application/json")
    assert r.status_code == 200, f"HTTP {r.status_code}: {r.text[:300]}"
    attrs = read_back_attributes(server, tid)
    wrong = {f"d{i}": (d, attrs[f"d{i}"].double_value) for i, d in enumerate(DOUBLES)
             if attrs[f"d{i}"].double_value != d}
    assert not wrong, f"doubles changed by the JSON receiver (sent, stored): {wrong}"
    assert attrs["i.max"].int_value == 2**63 - 1
    assert attrs["i.min"].int_value == -(2**63)
    assert attrs["i.odd"].int_value == 2**53 + 1
