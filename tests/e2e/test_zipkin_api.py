"""Zipkin's v2 query API on the Zipkin port, next to the receiver.

Data comes from real clients: the OpenTelemetry Python SDK's OTLP/HTTP exporter (typed attributes, events,
links, statuses, peer attributes) and its Zipkin JSON exporter, plus one hand-built Zipkin span with a 64-bit
trace id. Every response is validated against the schemas of Zipkin's published OpenAPI definition
(fixtures/zipkin2-api.yaml) with `jsonschema`, and the values against what the OpenTelemetry collector's
OTLP→Zipkin translation gives: microseconds, lower-hex ids, endpoints, kinds, string tags, annotations.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
import yaml
from jsonschema import Draft4Validator
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.exporter.zipkin.json import ZipkinExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode, set_span_in_context

from sdk_util import SdkPipeline

MS = 1_000_000
SPEC = yaml.safe_load((Path(__file__).parent / "fixtures" / "zipkin2-api.yaml").read_text())
SPAN_FIELDS = set(SPEC["definitions"]["Span"]["properties"])
ENDPOINT_FIELDS = set(SPEC["definitions"]["Endpoint"]["properties"])
SHORT_TRACE = "00000000000000000000000000c0ffee"


def validate(body, path: str, status: str = "200"):
    """Checks a response body against the schema Zipkin's API definition gives for it, and that spans and
    endpoints carry no field the definition does not name."""
    schema = {**SPEC["paths"][path]["get"]["responses"][status]["schema"], "definitions": SPEC["definitions"]}
    Draft4Validator(schema, format_checker=Draft4Validator.FORMAT_CHECKER).validate(body)

    def spans(node):
        if isinstance(node, list):
            for item in node:
                yield from spans(item)
        elif isinstance(node, dict):
            yield node

    if path in ("/traces", "/traceMany", "/trace/{traceId}"):
        for span in spans(body):
            assert set(span) <= SPAN_FIELDS, set(span) - SPAN_FIELDS
            for key in ("localEndpoint", "remoteEndpoint"):
                assert set(span.get(key, {})) <= ENDPOINT_FIELDS, span[key]
            assert len(span["traceId"]) in (16, 32) and span["traceId"] == span["traceId"].lower()


@pytest.fixture(scope="module")
def world(module_server_factory):
    """`frontend` (OTLP): a client span to `backend` that failed, with events and a link, and an internal
    child. `backend` (the SDK's Zipkin exporter): a server span and a producer child. One hand-built Zipkin span
    with a 64-bit trace id (service `legacy`)."""
    server = module_server_factory("zipkin")
    t0 = time.time_ns() - 300 * 1_000_000_000
    ids = {}

    backend = SdkPipeline(ZipkinExporter(endpoint=server.zipkin_url), {"service.name": "backend"})
    tracer = backend.provider.get_tracer("e2e.backend")
    handle = tracer.start_span("handle", kind=SpanKind.SERVER, start_time=t0 + 2_000 * MS,
                               attributes={"region": "us"})
    publish = tracer.start_span("publish", context=set_span_in_context(handle), kind=SpanKind.PRODUCER,
                                start_time=t0 + 2_001 * MS)
    publish.end(end_time=t0 + 2_002 * MS)
    handle.end(end_time=t0 + 2_005 * MS)
    backend.flush_and_check()
    backend.shutdown()
    ids["backend"] = format(handle.get_span_context().trace_id, "032x")
    ids["handle"] = format(handle.get_span_context().span_id, "016x")

    frontend = SdkPipeline(HttpExporter(endpoint=server.traces_url), {"service.name": "frontend", "host.name": "web-1"})
    tracer = frontend.provider.get_tracer("e2e.zipkin", "3.1")
    client = tracer.start_span(
        "get /api", kind=SpanKind.CLIENT, start_time=t0, links=[Link(handle.get_span_context(), {"why": "cause"})],
        attributes={"peer.service": "backend", "net.peer.ip": "10.1.2.3", "net.peer.port": 9000,
                    "http.status_code": 500, "region": "eu", "ratio": 0.5})
    client.add_event("ws", timestamp=t0 + 1 * MS)
    client.add_event("retry", {"attempt": 2}, timestamp=t0 + 2 * MS)
    client.set_status(Status(StatusCode.ERROR, "backend exploded"))
    render = tracer.start_span("render", context=set_span_in_context(client), start_time=t0 + 3 * MS)
    render.end(end_time=t0 + 3 * MS + 400)  # 400 ns: rounds up to 1 µs
    client.end(end_time=t0 + 25 * MS)
    frontend.flush_and_check()
    frontend.shutdown()
    ids["frontend"] = format(client.get_span_context().trace_id, "032x")
    ids["client"] = format(client.get_span_context().span_id, "016x")
    ids["render"] = format(render.get_span_context().span_id, "016x")

    legacy = [{"traceId": SHORT_TRACE[16:], "id": "000000000000beef", "name": "old", "kind": "SERVER",
               "timestamp": (t0 - 1_000 * MS) // 1000, "duration": 7,
               "localEndpoint": {"serviceName": "legacy", "ipv4": "192.168.0.1", "port": 8080}}]
    resp = requests.post(server.zipkin_url, json=legacy, timeout=30)
    assert resp.status_code == 202, resp.text
    return server, t0, ids


def url(server, path: str) -> str:
    return server.zipkin_url.removesuffix("/spans") + path


def get(server, path: str, **params) -> requests.Response:
    return requests.get(url(server, path), params=params, timeout=30)


def ok(server, path: str, spec_path: str | None = None, **params):
    resp = get(server, path, **params)
    assert resp.status_code == 200, f"{path} {params}: {resp.status_code} {resp.text}"
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    validate(body, spec_path or path)
    return body


def bad(resp: requests.Response, code: int, needle: str):
    assert resp.status_code == code, resp.text
    assert resp.headers["content-type"].startswith("text/plain")
    assert needle in resp.text, resp.text


# ---------------------------------------------------------------------------------------------- listings


def test_services_span_names_and_remote_services(world):
    server, _, _ = world
    assert ok(server, "/services") == ["backend", "frontend", "legacy"]
    assert ok(server, "/spans", serviceName="frontend") == ["get /api", "render"]
    assert ok(server, "/spans", serviceName="backend") == ["handle", "publish"]
    assert ok(server, "/spans", serviceName="nobody") == []
    assert ok(server, "/remoteServices", serviceName="frontend") == ["backend"]
    assert ok(server, "/remoteServices", serviceName="backend") == []
    bad(get(server, "/spans"), 400, "serviceName")
    bad(get(server, "/remoteServices"), 400, "serviceName")


def test_autocomplete(world):
    server, _, _ = world
    keys = ok(server, "/autocompleteKeys")
    assert {"region", "http.status_code", "host.name"} <= set(keys), keys
    assert "service.name" not in keys
    assert ok(server, "/autocompleteValues", key="region") == ["eu", "us"]
    assert ok(server, "/autocompleteValues", key="no.such.key") == []
    bad(get(server, "/autocompleteValues"), 400, "key")


# ---------------------------------------------------------------------------------------------- traces


def test_trace_from_otlp(world):
    server, t0, ids = world
    trace = ok(server, f"/trace/{ids['frontend']}", "/trace/{traceId}")
    spans = {s["id"]: s for s in trace}
    assert set(spans) == {ids["client"], ids["render"]}
    client = spans[ids["client"]]
    assert client["traceId"] == ids["frontend"]
    assert "parentId" not in client
    assert client["name"] == "get /api" and client["kind"] == "CLIENT"
    assert client["timestamp"] == t0 // 1000 and client["duration"] == 25_000, "microseconds"
    assert client["localEndpoint"] == {"serviceName": "frontend"}
    assert client["remoteEndpoint"] == {"serviceName": "backend", "ipv4": "10.1.2.3", "port": 9000}
    assert client["annotations"] == [
        {"timestamp": (t0 + 1 * MS) // 1000, "value": "ws"},
        {"timestamp": (t0 + 2 * MS) // 1000, "value": 'retry|{"attempt":2}|0'},
    ]
    tags = client["tags"]
    assert tags["http.status_code"] == "500" and tags["ratio"] == "0.5" and tags["region"] == "eu"
    assert tags["host.name"] == "web-1", "resource attributes become tags"
    assert tags["otel.scope.name"] == "e2e.zipkin" and tags["otel.scope.version"] == "3.1"
    assert tags["error"] == "true" and tags["otel.status_code"] == "ERROR"
    assert tags["otel.status_description"] == "backend exploded"
    assert tags["otlp.link.0"] == f'{ids["backend"]}|{ids["handle"]}||{{"why":"cause"}}|0'
    for consumed in ("peer.service", "net.peer.ip", "net.peer.port", "service.name"):
        assert consumed not in tags

    render = spans[ids["render"]]
    assert render["parentId"] == ids["client"]
    assert "kind" not in render and render["tags"]["span.kind"] == "internal"
    assert render["duration"] == 1, "durations under 1 µs round up"
    assert "error" not in render["tags"] and "otel.status_code" not in render["tags"]


def test_trace_from_the_zipkin_exporter_and_short_ids(world):
    server, t0, ids = world
    trace = ok(server, f"/trace/{ids['backend']}", "/trace/{traceId}")
    spans = {s["name"]: s for s in trace}
    assert spans["handle"]["kind"] == "SERVER" and spans["publish"]["kind"] == "PRODUCER"
    assert spans["publish"]["parentId"] == spans["handle"]["id"] == ids["handle"]
    assert spans["handle"]["localEndpoint"]["serviceName"] == "backend"
    # The Python exporter converts nanoseconds to microseconds through floats: allow its rounding.
    assert abs(spans["handle"]["timestamp"] - (t0 + 2_000 * MS) // 1000) <= 1
    assert abs(spans["handle"]["duration"] - 5_000) <= 1
    assert spans["handle"]["tags"]["region"] == "us"

    legacy = ok(server, f"/trace/{SHORT_TRACE[16:]}", "/trace/{traceId}")
    assert legacy == ok(server, f"/trace/{SHORT_TRACE}", "/trace/{traceId}")
    assert legacy == [{"traceId": SHORT_TRACE[16:], "id": "000000000000beef", "name": "old", "kind": "SERVER",
                       "timestamp": (t0 - 1_000 * MS) // 1000, "duration": 7,
                       "localEndpoint": {"serviceName": "legacy", "ipv4": "192.168.0.1", "port": 8080}}]


def test_trace_errors(world):
    server, _, _ = world
    bad(get(server, "/trace/" + "f" * 32), 404, "not found")
    bad(get(server, "/trace/not-hex"), 400, "hex")
    bad(get(server, "/trace/" + "a" * 33), 400, "32")


def test_trace_many(world):
    server, _, ids = world
    traces = ok(server, "/traceMany", traceIds=f"{ids['frontend']},{ids['backend']}")
    assert sorted(t[0]["traceId"] for t in traces) == sorted([ids["frontend"], ids["backend"]])
    assert ok(server, "/traceMany", traceIds=f"{ids['frontend']},{'e' * 32}")[0][0]["traceId"] == ids["frontend"]
    assert ok(server, "/traceMany", traceIds=f"{'e' * 32},{'d' * 16}") == []
    bad(get(server, "/traceMany", traceIds=ids["frontend"]), 400, "at least two")
    bad(get(server, "/traceMany", traceIds=f"{ids['frontend']},{ids['frontend']}"), 400, "twice")
    bad(get(server, "/traceMany", traceIds=f"{ids['frontend']},xyz"), 400, "hex")
    bad(get(server, "/traceMany"), 400, "traceIds")


def test_search(world):
    server, t0, ids = world
    end_ts = (t0 + 10_000 * MS) // MS

    def search(**params) -> list[str]:
        traces = ok(server, "/traces", **{"endTs": end_ts, "lookback": 60_000, **params})
        for trace in traces:
            assert len({s["traceId"] for s in trace}) == 1, "one trace per list"
        return [trace[0]["traceId"] for trace in traces]

    everything = [ids["backend"], ids["frontend"], SHORT_TRACE[16:]]
    assert search() == everything, "newest first"
    assert search(serviceName="frontend") == [ids["frontend"]]
    assert search(serviceName="frontend", spanName="render") == [ids["frontend"]]
    assert search(serviceName="backend", spanName="render") == []
    assert search(remoteServiceName="backend") == [ids["frontend"]]
    assert search(serviceName="backend", remoteServiceName="backend") == []
    assert search(annotationQuery="http.status_code=500") == [ids["frontend"]], "typed attributes match as text"
    assert search(annotationQuery="error") == [ids["frontend"]], "a bare word matches a tag key"
    assert search(annotationQuery="ws") == [ids["frontend"]], "a bare word matches an annotation"
    assert search(annotationQuery="region=us") == [ids["backend"]]
    assert search(annotationQuery="region=eu and ws") == [ids["frontend"]]
    assert search(annotationQuery="region=eu and span.kind=internal") == [], "one span must match all"
    assert search(annotationQuery="host.name=web-1") == [ids["frontend"]]
    assert search(minDuration=20_000) == [ids["frontend"]], "microseconds"
    assert search(minDuration=1, maxDuration=7) == [ids["frontend"], SHORT_TRACE[16:]], "render lasts 400 ns: 1 µs"
    assert search(minDuration=4_000, maxDuration=6_000) == [ids["backend"]]
    assert search(limit=1) == [ids["backend"]]
    assert search(endTs=(t0 + 1_000 * MS) // MS) == [ids["frontend"], SHORT_TRACE[16:]], "milliseconds"
    assert search(endTs=(t0 + 1_000 * MS) // MS, lookback=1_500) == [ids["frontend"]]
    assert search(serviceName="all", spanName="all") == everything


@pytest.mark.parametrize("params, needle", [
    ({"limit": "0"}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"minDuration": "fast"}, "minDuration"),
    ({"maxDuration": "10"}, "maxDuration is only valid with minDuration"),
    ({"minDuration": "10", "maxDuration": "5"}, "minDuration"),
    ({"endTs": "0"}, "endTs"),
    ({"lookback": "-1"}, "lookback"),
])
def test_search_rejects_malformed_parameters(world, params, needle):
    server, _, _ = world
    bad(get(server, "/traces", **params), 400, needle)


def test_zipkin_output_is_zipkin_input(world):
    """What the query API returns, posted back to the receiver under another tenant, reads back the same."""
    server, _, ids = world
    for trace_id in (ids["frontend"], ids["backend"]):
        original = ok(server, f"/trace/{trace_id}", "/trace/{traceId}")
        resp = requests.post(server.zipkin_url, json=original, headers={"X-Scope-OrgID": "copy"}, timeout=30)
        assert resp.status_code == 202, resp.text
        copy = requests.get(url(server, f"/trace/{trace_id}"), headers={"X-Scope-OrgID": "copy"}, timeout=30)
        assert copy.status_code == 200, copy.text
        assert sorted(copy.json(), key=lambda s: s["id"]) == sorted(original, key=lambda s: s["id"])


def test_results_are_the_same_from_blocks(world):
    """After the head is cut into blocks, search and lookups give the same answers."""
    server, t0, ids = world
    before = ok(server, "/traces", endTs=(t0 + 10_000 * MS) // MS, lookback=60_000)
    trace_before = ok(server, f"/trace/{ids['frontend']}", "/trace/{traceId}")
    resp = requests.post(server.query_url + "/api/v1/flush", timeout=60)
    assert resp.status_code == 200 and resp.json()["blocks"] >= 1, resp.text
    assert ok(server, "/traces", endTs=(t0 + 10_000 * MS) // MS, lookback=60_000) == before
    assert ok(server, f"/trace/{ids['frontend']}", "/trace/{traceId}") == trace_before
    assert ok(server, "/remoteServices", serviceName="frontend") == ["backend"]
