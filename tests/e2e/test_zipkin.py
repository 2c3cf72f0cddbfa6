"""Zipkin v2 receiver with hand-built JSON and protobuf (ListOfSpans) payloads, asserted as the
OTel collector's zipkin v2 translator maps them."""

from __future__ import annotations

import json

import requests

from helpers import (
    ZipkinAnnotation,
    ZipkinEndpoint,
    ZipkinListOfSpans,
    all_spans,
    attrs_py,
    flatten,
    rand_span_id,
    rand_trace_id,
)

TS = 1_700_000_000_123_456  # µs


def zipkin_spans(trace_hex: str) -> list[dict]:
    return [
        {
            "traceId": trace_hex, "id": "a2fb4a1d1a96d312", "name": "get /api", "kind": "CLIENT",
            "timestamp": TS, "duration": 2_500,
            "localEndpoint": {"serviceName": "frontend", "ipv4": "127.0.0.1", "port": 8080},
            "remoteEndpoint": {"serviceName": "backend", "ipv4": "127.0.0.2", "port": 9000},
            "annotations": [{"timestamp": TS + 100, "value": "ws"}, {"timestamp": TS + 2_400, "value": "wr"}],
            "tags": {"http.method": "GET", "http.status_code": "500", "custom.ü": "値 🚀",
                     "otel.status_code": "ERROR", "otel.status_description": "backend exploded"},
        },
        {
            "traceId": trace_hex, "parentId": "a2fb4a1d1a96d312", "id": "0020000000000001", "name": "handle",
            "kind": "SERVER", "timestamp": TS + 200, "duration": 1_800, "shared": True,
            "localEndpoint": {"serviceName": "backend"}, "tags": {"error": "true"},
        },
        {
            "traceId": trace_hex, "parentId": "0020000000000001", "id": "0020000000000002", "name": "send",
            "kind": "PRODUCER", "timestamp": TS + 300, "duration": 10,
            "localEndpoint": {"serviceName": "backend"}, "remoteEndpoint": {"serviceName": "kafka"},
            "tags": {"otel.status_code": "OK"},
        },
        {
            "traceId": trace_hex, "parentId": "0020000000000002", "id": "0020000000000003", "name": "receive",
            "kind": "CONSUMER", "timestamp": TS + 400, "duration": 20,
            "localEndpoint": {"serviceName": "worker"},
        },
        {
            "traceId": trace_hex, "parentId": "0020000000000003", "id": "0020000000000004", "name": "local work",
            "timestamp": TS + 500, "duration": 1, "localEndpoint": {"serviceName": "worker"},
            "tags": {"error": "disk full"},
        },
    ]


def check_translated(got, trace_id: bytes, with_kafka_peer: bool = True):
    spans = {sp.span_id.hex(): (res, sp) for res, _scope, sp in all_spans(got)}
    assert set(spans) == {"a2fb4a1d1a96d312", "0020000000000001", "0020000000000002", "0020000000000003",
                          "0020000000000004"}
    for _res, sp in spans.values():
        assert sp.trace_id == trace_id

    res, client = spans["a2fb4a1d1a96d312"]
    assert attrs_py(res.attributes).get("service.name") == ("string", "frontend")
    assert client.name == "get /api"
    assert client.kind == 3  # CLIENT
    assert client.parent_span_id == b""
    assert client.start_time_unix_nano == TS * 1000
    assert client.end_time_unix_nano == (TS + 2_500) * 1000
    attrs = attrs_py(client.attributes)
    assert attrs.get("peer.service") == ("string", "backend"), attrs
    assert attrs.get("http.method") == ("string", "GET")
    assert attrs.get("http.status_code") == ("string", "500"), "tags stay strings"
    assert attrs.get("custom.ü") == ("string", "値 🚀")
    assert "otel.status_code" not in attrs and "otel.status_description" not in attrs, attrs
    assert client.status.code == 2 and client.status.message == "backend exploded", client.status
    assert [(e.name, e.time_unix_nano) for e in client.events] == [("ws", (TS + 100) * 1000),
                                                                   ("wr", (TS + 2_400) * 1000)]

    res, server_span = spans["0020000000000001"]
    assert attrs_py(res.attributes).get("service.name") == ("string", "backend")
    assert server_span.kind == 2
    assert server_span.parent_span_id == bytes.fromhex("a2fb4a1d1a96d312")
    assert server_span.status.code == 2, "an `error` tag means ERROR"
    assert server_span.end_time_unix_nano - server_span.start_time_unix_nano == 1_800_000

    _res, producer = spans["0020000000000002"]
    assert producer.kind == 4
    assert producer.status.code == 1, "otel.status_code=OK"
    if with_kafka_peer:
        assert attrs_py(producer.attributes).get("peer.service") == ("string", "kafka")

    res, consumer = spans["0020000000000003"]
    assert consumer.kind == 5
    assert consumer.status.code == 0
    assert attrs_py(res.attributes).get("service.name") == ("string", "worker")

    _res, local = spans["0020000000000004"]
    assert local.kind == 0, "no kind -> SPAN_KIND_UNSPECIFIED (collector translator)"
    assert local.status.code == 2
    assert local.end_time_unix_nano - local.start_time_unix_nano == 1_000


def test_zipkin_json_64bit_trace_id(server):
    short = "463ac35c9f6413ad"
    r = requests.post(server.zipkin_url, data=json.dumps(zipkin_spans(short)),
                      headers={"Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 202, f"HTTP {r.status_code}: {r.text[:300]}"
    padded = "0" * 16 + short
    got_short = server.fetch_trace(short)
    got_long = server.fetch_trace(padded)
    assert flatten(got_short) == flatten(got_long)
    check_translated(got_short, bytes.fromhex(padded))
    doc = server.get_trace(short).json()
    ids = {sp["traceId"].lower() for rs in doc["resourceSpans"] for ss in rs["scopeSpans"] for sp in ss["spans"]}
    assert ids == {padded}


def test_zipkin_json_128bit_trace_id(server):
    tid = rand_trace_id()
    r = requests.post(server.zipkin_url, data=json.dumps(zipkin_spans(tid.hex())).encode(),
                      headers={"Content-Type": "application/json; charset=utf-8"}, timeout=10)
    assert r.status_code == 202, f"HTTP {r.status_code}: {r.text[:300]}"
    check_translated(server.fetch_trace(tid), tid)


def test_zipkin_protobuf(server):
    tid = rand_trace_id()
    msg = ZipkinListOfSpans()
    for js in zipkin_spans(tid.hex()):
        s = msg.spans.add()
        s.trace_id = bytes.fromhex(js["traceId"])
        s.id = bytes.fromhex(js["id"])
        if "parentId" in js:
            s.parent_id = bytes.fromhex(js["parentId"])
        if "kind" in js:
            s.kind = {"CLIENT": 1, "SERVER": 2, "PRODUCER": 3, "CONSUMER": 4}[js["kind"]]
        s.name = js["name"]
        s.timestamp = js["timestamp"]
        s.duration = js["duration"]
        s.shared = js.get("shared", False)
        le = js["localEndpoint"]
        s.local_endpoint.CopyFrom(ZipkinEndpoint(service_name=le["serviceName"]))
        if "ipv4" in le:
            s.local_endpoint.ipv4 = bytes(int(x) for x in le["ipv4"].split("."))
            s.local_endpoint.port = le["port"]
        if "remoteEndpoint" in js:
            s.remote_endpoint.CopyFrom(ZipkinEndpoint(service_name=js["remoteEndpoint"]["serviceName"]))
        for a in js.get("annotations", []):
            s.annotations.append(ZipkinAnnotation(timestamp=a["timestamp"], value=a["value"]))
        for k, v in js.get("tags", {}).items():
            s.tags[k] = v
    r = requests.post(server.zipkin_url, data=msg.SerializeToString(),
                      headers={"Content-Type": "application/x-protobuf"}, timeout=10)
    assert r.status_code == 202, f"HTTP {r.status_code}: {r.text[:300]}"
    check_translated(server.fetch_trace(tid), tid)


def test_zipkin_span_without_service_name(server):
    """No localEndpoint: no resource service.name is invented (collector behaviour)."""
    tid = rand_trace_id()
    sid = rand_span_id()
    body = [{"traceId": tid.hex(), "id": sid.hex(), "name": "anon", "timestamp": TS, "duration": 5}]
    r = requests.post(server.zipkin_url, json=body, timeout=10)
    assert r.status_code == 202, f"HTTP {r.status_code}: {r.text[:300]}"
    (res, _scope, sp), = all_spans(server.fetch_trace(tid))
    assert sp.span_id == sid and sp.name == "anon"
    assert "service.name" not in attrs_py(res.attributes), res
