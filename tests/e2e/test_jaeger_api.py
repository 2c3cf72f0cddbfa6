"""Jaeger's query APIs on the query port: the HTTP JSON API Jaeger UI and Grafana's Jaeger data source call
(`/api/services`, `/api/operations`, `/api/traces`) and the stable `/api/v3` endpoints.

The data comes from the real OpenTelemetry Python SDK (OTLP/HTTP exporter) with known times, kinds, typed
attributes, events, links and statuses. Every endpoint is checked for field names, types, units (microseconds)
and status codes against Jaeger's JSON model (model/json) and Jaeger's api_v3 HTTP gateway; the v3 OTLP JSON is
parsed by the official opentelemetry-proto classes, which reject any field OTLP/JSON does not define.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests
import yaml
from jsonschema import Draft7Validator
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData
from opentelemetry.trace import Link, SpanKind, Status, StatusCode, set_span_in_context

from helpers import check_json_conventions, otlp_json_to_proto
from sdk_util import SdkPipeline

MS = 1_000_000
HEX = re.compile(r"^[0-9a-f]+$")
V3_SPEC = yaml.safe_load((Path(__file__).parent / "fixtures" / "jaeger-api-v3.yaml").read_text())
SPAN_FIELDS = set(V3_SPEC["components"]["schemas"]["opentelemetry.proto.trace.v1.Span"]["properties"])


def validate_v3(body, path: str):
    """Checks a v3 body against the response schema Jaeger's api_v3 OpenAPI definition gives for `path` (the
    OTLP part of `{"result": ...}` for traces), and that spans carry only fields the definition names."""
    content = V3_SPEC["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
    schema = {**content["schema"], "components": V3_SPEC["components"]}
    Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER).validate(body)
    for rs in body.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                assert set(span) <= SPAN_FIELDS, set(span) - SPAN_FIELDS


def rfc3339(nanos: int) -> str:
    return datetime.fromtimestamp(nanos / 1e9, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.fixture(scope="module")
def world(module_server_factory):
    """One server holding two traces sent by the SDK: `inventory` (one OK server span, newest) and `checkout`
    (an erroring server root with an event, a client child linking to the inventory trace, an internal child)."""
    server = module_server_factory("jaeger")
    t0 = time.time_ns() - 120 * 1_000_000_000
    ids = {}

    inventory = SdkPipeline(HttpExporter(endpoint=server.traces_url), {"service.name": "inventory"})
    tracer = inventory.provider.get_tracer("e2e.inventory")
    stock = tracer.start_span("GET /stock", kind=SpanKind.SERVER, start_time=t0 + 1_000 * MS,
                              attributes={"region": "us"})
    stock.set_status(Status(StatusCode.OK))
    stock.end(end_time=t0 + 1_010 * MS)
    inventory.flush_and_check()
    inventory.shutdown()
    ids["inventory"] = format(stock.get_span_context().trace_id, "032x")
    ids["stock"] = format(stock.get_span_context().span_id, "016x")

    checkout = SdkPipeline(HttpExporter(endpoint=server.traces_url),
                           {"service.name": "checkout", "deployment.environment": "e2e"})
    tracer = checkout.provider.get_tracer("e2e.jaeger", "1.0")
    root = tracer.start_span("POST /checkout", kind=SpanKind.SERVER, start_time=t0,
                             attributes={"http.status_code": 500, "region": "eu", "ratio": 0.5, "cached": True})
    root.add_event("retry", {"attempt": 2}, timestamp=t0 + 50 * MS)
    root.set_status(Status(StatusCode.ERROR, "card declined"))
    ctx = set_span_in_context(root)
    select = tracer.start_span("SELECT orders", context=ctx, kind=SpanKind.CLIENT, start_time=t0 + 10 * MS,
                               links=[Link(stock.get_span_context())], attributes={"db.system": "postgres"})
    select.end(end_time=t0 + 30 * MS)
    compute = tracer.start_span("compute", context=ctx, start_time=t0 + 40 * MS)
    compute.end(end_time=t0 + 70 * MS)
    root.end(end_time=t0 + 100 * MS)
    checkout.flush_and_check()
    checkout.shutdown()
    ids["checkout"] = format(root.get_span_context().trace_id, "032x")
    ids["root"] = format(root.get_span_context().span_id, "016x")
    ids["select"] = format(select.get_span_context().span_id, "016x")
    return server, t0, ids


def get(server, path: str, **params) -> requests.Response:
    return requests.get(server.query_url + path, params=params, timeout=30)


def check_envelope(body: dict, total: int | None = None):
    assert set(body) == {"data", "total", "limit", "offset", "errors"}, body
    assert body["limit"] == 0 and body["offset"] == 0 and body["errors"] is None, body
    if total is not None:
        assert body["total"] == total


def check_error(resp: requests.Response, code: int, needle: str):
    assert resp.status_code == code, resp.text
    body = resp.json()
    assert body["data"] is None and body["total"] == 0 and body["limit"] == 0 and body["offset"] == 0, body
    assert len(body["errors"]) == 1 and body["errors"][0]["code"] == code, body
    assert needle in body["errors"][0]["msg"], body


def check_v3_error(resp: requests.Response, code: int, needle: str):
    assert resp.status_code == code, resp.text
    body = resp.json()
    assert set(body) == {"error"} and body["error"]["httpCode"] == code, body
    assert needle in body["error"]["message"], body


def tags_of(span: dict) -> dict:
    return {t["key"]: (t["type"], t["value"]) for t in span["tags"]}


def check_span_shape(span: dict):
    """Field names and types of Jaeger's JSON span (model/json.Span)."""
    assert {"traceID", "spanID", "operationName", "references", "startTime", "duration", "tags", "logs",
            "processID", "warnings"} <= set(span), span
    assert HEX.match(span["traceID"]) and len(span["traceID"]) in (16, 32)
    assert HEX.match(span["spanID"]) and len(span["spanID"]) == 16
    assert isinstance(span["operationName"], str)
    assert isinstance(span["startTime"], int) and isinstance(span["duration"], int)
    for ref in span["references"]:
        assert set(ref) == {"refType", "traceID", "spanID"} and ref["refType"] in ("CHILD_OF", "FOLLOWS_FROM")
    types = {"string": str, "bool": bool, "int64": int, "float64": (int, float), "binary": str}
    for tag in span["tags"] + [f for log in span["logs"] for f in log["fields"]]:
        assert set(tag) == {"key", "type", "value"}, tag
        assert isinstance(tag["value"], types[tag["type"]]), tag
    for log in span["logs"]:
        assert set(log) == {"timestamp", "fields"} and isinstance(log["timestamp"], int)


def traces_of(body: dict) -> list[str]:
    return [t["traceID"] for t in body["data"]]


# ---------------------------------------------------------------------------------------------- listings


def test_services_and_operations(world):
    server, _, _ = world
    body = get(server, "/api/services").json()
    check_envelope(body, total=2)
    assert sorted(body["data"]) == ["checkout", "inventory"]

    body = get(server, "/api/services/checkout/operations").json()
    check_envelope(body, total=3)
    assert body["data"] == ["POST /checkout", "SELECT orders", "compute"]
    assert get(server, "/api/services/nobody/operations").json()["data"] == []

    body = get(server, "/api/operations", service="checkout").json()
    check_envelope(body, total=3)
    assert sorted((o["name"], o["spanKind"]) for o in body["data"]) == [
        ("POST /checkout", "server"), ("SELECT orders", "client"), ("compute", "internal")]
    body = get(server, "/api/operations", service="checkout", spanKind="client").json()
    assert body["data"] == [{"name": "SELECT orders", "spanKind": "client"}]
    check_error(get(server, "/api/operations"), 400, "service")
    check_error(get(server, "/api/operations", service="checkout", spanKind="sideways"), 400, "sideways")


def test_listings_are_per_tenant(world):
    server, _, _ = world
    resp = requests.get(server.query_url + "/api/services", headers={"X-Scope-OrgID": "someone-else"}, timeout=30)
    assert resp.json()["data"] == []
    resp = requests.get(server.query_url + "/api/v3/services", headers={"X-Scope-OrgID": "bad tenant!"}, timeout=30)
    check_v3_error(resp, 400, "X-Scope-OrgID")


# ---------------------------------------------------------------------------------------------- trace by id


def test_trace_in_jaegers_model(world):
    server, t0, ids = world
    resp = get(server, f"/api/traces/{ids['checkout']}")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    check_envelope(body)
    assert len(body["data"]) == 1
    trace = body["data"][0]
    assert set(trace) == {"traceID", "spans", "processes", "warnings"}
    assert trace["traceID"] == ids["checkout"]
    for span in trace["spans"]:
        check_span_shape(span)
        assert span["traceID"] == ids["checkout"]
    spans = {s["operationName"]: s for s in trace["spans"]}
    assert set(spans) == {"POST /checkout", "SELECT orders", "compute"}

    root = spans["POST /checkout"]
    assert root["spanID"] == ids["root"] and root["references"] == []
    assert root["startTime"] == t0 // 1000, "microseconds since the epoch"
    assert root["duration"] == 100_000, "microseconds"
    tags = tags_of(root)
    assert tags["http.status_code"] == ("int64", 500)
    assert tags["region"] == ("string", "eu")
    assert tags["ratio"] == ("float64", 0.5)
    assert tags["cached"] == ("bool", True)
    assert tags["span.kind"] == ("string", "server")
    assert tags["error"] == ("bool", True)
    assert tags["otel.status_code"] == ("string", "ERROR")
    assert tags["otel.status_description"] == ("string", "card declined")
    assert tags["otel.scope.name"] == ("string", "e2e.jaeger")
    assert tags["otel.scope.version"] == ("string", "1.0")
    assert root["logs"] == [{"timestamp": (t0 + 50 * MS) // 1000, "fields": [
        {"key": "event", "type": "string", "value": "retry"},
        {"key": "attempt", "type": "int64", "value": 2}]}]

    select = spans["SELECT orders"]
    assert select["duration"] == 20_000 and select["startTime"] == (t0 + 10 * MS) // 1000
    assert select["references"] == [
        {"refType": "CHILD_OF", "traceID": ids["checkout"], "spanID": ids["root"]},
        {"refType": "FOLLOWS_FROM", "traceID": ids["inventory"], "spanID": ids["stock"]},
    ]
    assert tags_of(select)["span.kind"] == ("string", "client")
    assert "error" not in tags_of(select) and "otel.status_code" not in tags_of(select)
    assert tags_of(spans["compute"])["span.kind"] == ("string", "internal")

    assert len(trace["processes"]) == 1
    (pid, process), = trace["processes"].items()
    assert all(s["processID"] == pid for s in trace["spans"])
    assert process["serviceName"] == "checkout"
    ptags = {t["key"]: (t["type"], t["value"]) for t in process["tags"]}
    assert ptags["deployment.environment"] == ("string", "e2e")
    assert "service.name" not in ptags


def test_trace_errors(world):
    server, _, _ = world
    resp = get(server, "/api/traces/" + "0" * 31 + "1")
    assert resp.status_code == 404
    assert resp.json() == {"data": None, "total": 0, "limit": 0, "offset": 0,
                           "errors": [{"code": 404, "msg": "trace not found"}]}
    check_error(get(server, "/api/traces/not-hex"), 400, "hex")
    check_error(get(server, "/api/traces/" + "a" * 33), 400, "32")


# ---------------------------------------------------------------------------------------------- search


def test_search(world):
    server, t0, ids = world
    window = {"start": (t0 - 1_000 * MS) // 1000, "end": (t0 + 5_000 * MS) // 1000}

    def search(**params):
        resp = get(server, "/api/traces", **{**window, **params})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        check_envelope(body)
        for trace in body["data"]:
            assert set(trace) == {"traceID", "spans", "processes", "warnings"}
            for span in trace["spans"]:
                check_span_shape(span)
        return traces_of(body)

    both = [ids["inventory"], ids["checkout"]]
    assert search() == both, "no service needed; newest first"
    assert search(service="checkout") == [ids["checkout"]]
    assert search(service="inventory", operation="GET /stock") == [ids["inventory"]]
    assert search(service="checkout", operation="GET /stock") == []
    assert search(tags=json.dumps({"http.status_code": "500"})) == [ids["checkout"]], "typed values match as text"
    assert search(tags=json.dumps({"error": "true"})) == [ids["checkout"]]
    assert search(tags=json.dumps({"otel.status_code": "OK"})) == [ids["inventory"]]
    assert search(tags='region=eu') == [ids["checkout"]], "logfmt"
    assert search(tags='region="us"') == [ids["inventory"]]
    assert search(tags=json.dumps({"span.kind": "client", "db.system": "postgres"})) == [ids["checkout"]]
    assert search(tags=json.dumps({"span.kind": "client", "region": "eu"})) == [], "one span must match all"
    assert search(tags=json.dumps({"deployment.environment": "e2e"})) == [ids["checkout"]], "process tags"
    assert search(tag="region:us") == [ids["inventory"]]
    assert search(minDuration="50ms") == [ids["checkout"]]
    assert search(maxDuration="15ms") == [ids["inventory"]]
    assert search(minDuration="15ms", maxDuration="25ms") == [ids["checkout"]]
    assert search(limit=1) == [ids["inventory"]]
    assert search(start=(t0 + 500 * MS) // 1000) == [ids["inventory"]]
    assert search(end=(t0 + 500 * MS) // 1000) == [ids["checkout"]]

    resp = get(server, "/api/traces", traceID=[ids["checkout"], "ab" * 16])
    body = resp.json()
    assert traces_of(body) == [ids["checkout"]]
    assert body["errors"] == [{"msg": "trace not found", "traceID": "ab" * 16}]


@pytest.mark.parametrize("params, needle", [
    ({"start": "yesterday"}, "'start'"),
    ({"end": "1.5"}, "'end'"),
    ({"minDuration": "fast"}, "'minDuration'"),
    ({"maxDuration": "10"}, "'maxDuration'"),
    ({"minDuration": "2s", "maxDuration": "1s"}, "maxDuration"),
    ({"limit": "ten"}, "'limit'"),
    ({"lookback": "forever"}, "'lookback'"),
    ({"tags": "{broken"}, "tags"),
    ({"tags": '{"a": [1]}'}, "tags"),
    ({"tag": "novalue"}, "'tag'"),
    ({"traceID": "xyz"}, "traceID"),
])
def test_search_rejects_malformed_parameters(world, params, needle):
    server, _, _ = world
    check_error(get(server, "/api/traces", **params), 400, needle)


# ---------------------------------------------------------------------------------------------- api v3


def parse_otlp(result: dict) -> TracesData:
    """The result must be OTLP/JSON (hex ids, 64-bit integers as strings, enums as integers): the official
    classes parse it without ignoring any field."""
    check_json_conventions(result)
    return otlp_json_to_proto(result, TracesData)


def test_v3_listings(world):
    server, _, _ = world
    body = get(server, "/api/v3/services").json()
    validate_v3(body, "/api/v3/services")
    assert body == {"services": ["checkout", "inventory"]}
    body = get(server, "/api/v3/operations", service="checkout").json()
    validate_v3(body, "/api/v3/operations")
    assert set(body) == {"operations"}
    assert sorted((o["name"], o["spanKind"]) for o in body["operations"]) == [
        ("POST /checkout", "server"), ("SELECT orders", "client"), ("compute", "internal")]
    assert get(server, "/api/v3/operations", service="checkout", spanKind="server").json() == {
        "operations": [{"name": "POST /checkout", "spanKind": "server"}]}
    assert get(server, "/api/v3/operations", service="checkout", span_kind="internal").json() == {
        "operations": [{"name": "compute", "spanKind": "internal"}]}
    check_v3_error(get(server, "/api/v3/operations"), 400, "service")
    check_v3_error(get(server, "/api/v3/operations", service="checkout", spanKind="up"), 400, "spanKind")


def test_v3_trace_by_id(world):
    server, t0, ids = world
    resp = get(server, f"/api/v3/traces/{ids['checkout']}")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"result"}
    validate_v3(body["result"], "/api/v3/traces/{traceId}")
    data = parse_otlp(body["result"])
    spans = {sp.name: sp for rs in data.resource_spans for ss in rs.scope_spans for sp in ss.spans}
    assert set(spans) == {"POST /checkout", "SELECT orders", "compute"}
    root = spans["POST /checkout"]
    assert root.trace_id.hex() == ids["checkout"] and root.span_id.hex() == ids["root"]
    assert root.start_time_unix_nano == t0 and root.end_time_unix_nano == t0 + 100 * MS
    assert root.status.code == 2 and root.status.message == "card declined"
    first = body["result"]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert HEX.match(first["traceId"]) and len(first["traceId"]) == 32, "OTLP/JSON ids are hex"
    assert isinstance(first["startTimeUnixNano"], str), "64-bit integers are strings"

    window = {"start_time": rfc3339(t0 - 60_000 * MS), "end_time": rfc3339(t0 + 60_000 * MS)}
    assert parse_otlp(get(server, f"/api/v3/traces/{ids['checkout']}", **window).json()["result"]) == data
    assert get(server, f"/api/v3/traces/{ids['checkout']}", rawTraces="true").status_code == 200

    check_v3_error(get(server, "/api/v3/traces/" + "0" * 31 + "2"), 404, "No traces found")
    check_v3_error(get(server, "/api/v3/traces/xyz"), 400, "malformed parameter trace_id")
    check_v3_error(get(server, f"/api/v3/traces/{ids['checkout']}", start_time="yesterday"), 400,
                   "malformed parameter start_time")
    check_v3_error(get(server, f"/api/v3/traces/{ids['checkout']}", rawTraces="maybe"), 400, "rawTraces")


def test_v3_search(world):
    server, t0, ids = world
    window = {"query.start_time_min": rfc3339(t0 - 1_000 * MS), "query.start_time_max": rfc3339(t0 + 5_000 * MS)}

    def search(**params) -> set[str]:
        resp = get(server, "/api/v3/traces", **{**window, **params})
        if resp.status_code == 404:
            check_v3_error(resp, 404, "No traces found")
            return set()
        assert resp.status_code == 200, resp.text
        validate_v3(resp.json()["result"], "/api/v3/traces")
        data = parse_otlp(resp.json()["result"])
        return {sp.trace_id.hex() for rs in data.resource_spans for ss in rs.scope_spans for sp in ss.spans}

    assert search() == {ids["checkout"], ids["inventory"]}, "no service needed"
    assert search(**{"query.service_name": "checkout"}) == {ids["checkout"]}
    assert search(**{"query.serviceName": "inventory"}) == {ids["inventory"]}, "canonical camelCase names"
    assert search(**{"query.operation_name": "SELECT orders"}) == {ids["checkout"]}
    assert search(**{"query.attributes": json.dumps({"region": "us"})}) == {ids["inventory"]}
    assert search(**{"query.attributes": json.dumps({"http.status_code": "500", "error": "true"})}) == {
        ids["checkout"]}
    assert search(**{"query.duration_min": "90ms"}) == {ids["checkout"]}
    assert search(**{"query.durationMax": "0.015s"}) == {ids["inventory"]}
    assert search(**{"query.search_depth": "1"}) == {ids["inventory"]}, "newest first"
    assert search(**{"query.num_traces": "1"}) == {ids["inventory"]}
    assert search(**{"query.service_name": "nobody"}) == set()
    whole = get(server, "/api/v3/traces", **window, **{"query.service_name": "checkout"}).json()["result"]
    assert len([sp for rs in whole["resourceSpans"] for ss in rs["scopeSpans"] for sp in ss["spans"]]) == 3, (
        "whole traces, not only the matching spans")


def test_v3_accepts_every_documented_parameter(world):
    """Each parameter api_v3's definition lists, with a value in its documented format, is understood."""
    server, t0, ids = world
    examples = {"query.serviceName": "checkout", "query.operationName": "POST /checkout",
                "query.startTimeMin": rfc3339(t0 - 1_000 * MS), "query.startTimeMax": rfc3339(t0 + 1_000 * MS),
                "query.durationMin": "0.05s", "query.durationMax": "1s", "query.searchDepth": "5",
                "query.rawTraces": "true"}
    names = [p["name"] for p in V3_SPEC["paths"]["/api/v3/traces"]["get"]["parameters"]]
    assert sorted(names) == sorted(examples)
    for name in names:
        resp = get(server, "/api/v3/traces", **{name: examples[name]})
        assert resp.status_code == 200, f"{name}: {resp.text}"
        assert ids["checkout"] in resp.text
    resp = get(server, "/api/v3/traces", **examples)
    assert resp.status_code == 200, resp.text
    validate_v3(resp.json()["result"], "/api/v3/traces")
    for param in V3_SPEC["paths"]["/api/v3/traces/{traceId}"]["get"]["parameters"]:
        if param["in"] == "query":
            value = "true" if param["schema"]["type"] == "boolean" else rfc3339(t0)
            resp = get(server, f"/api/v3/traces/{ids['checkout']}", **{param["name"]: value})
            assert resp.status_code == 200, f"{param['name']}: {resp.text}"


@pytest.mark.parametrize("params, needle", [
    ({"query.start_time_min": "yesterday"}, "malformed parameter query.start_time_min"),
    ({"query.startTimeMax": "1700000000"}, "malformed parameter query.startTimeMax"),
    ({"query.duration_min": "5"}, "malformed parameter query.duration_min"),
    ({"query.durationMax": "soon"}, "malformed parameter query.durationMax"),
    ({"query.search_depth": "many"}, "malformed parameter query.search_depth"),
    ({"query.search_depth": "-1"}, "malformed parameter query.search_depth"),
    ({"query.attributes": "{not json"}, "malformed parameter query.attributes"),
    ({"query.raw_traces": "perhaps"}, "malformed parameter query.raw_traces"),
    ({"query.start_time_min": "2030-01-01T00:00:00Z", "query.start_time_max": "2020-01-01T00:00:00Z"}, "after"),
])
def test_v3_search_rejects_malformed_parameters(world, params, needle):
    server, _, _ = world
    check_v3_error(get(server, "/api/v3/traces", **params), 400, needle)


# ---------------------------------------------------------------------------------------------- a third-party client


def test_a_third_party_jaeger_client(world):
    """jaeger-mcp (PyPI), a Jaeger API client whose tools summarise what `/api/services`, `/api/traces` and
    `/api/traces/{id}` return: roots from references, services from processes, errors from tags."""
    import asyncio

    from jaeger_mcp import _mcp, tools
    from jaeger_mcp.client import JaegerHTTPClient

    server, t0, ids = world
    window = {"start": (t0 - 1_000 * MS) // 1000, "end": (t0 + 5_000 * MS) // 1000}

    async def drive():
        _mcp._client = JaegerHTTPClient(url=server.query_url, cache_ttl=0, retry_attempts=1)
        try:
            services = (await tools.jaeger_list_services()).structuredContent
            operations = (await tools.jaeger_list_operations(service="checkout")).structuredContent
            found = (await tools.jaeger_search_traces(service="checkout", **window)).structuredContent
            ok = (await tools.jaeger_search_traces(service="inventory", tags='{"otel.status_code":"OK"}',
                                                   **window)).structuredContent
            trace = (await tools.jaeger_get_trace(trace_id=ids["checkout"])).structuredContent
            path = (await tools.jaeger_critical_path(trace_id=ids["checkout"])).structuredContent
            return services, operations, found, ok, trace, path
        finally:
            await _mcp._client.aclose()
            _mcp._client = None

    services, operations, found, ok, trace, path = asyncio.run(drive())
    assert sorted(services["services"]) == ["checkout", "inventory"]
    assert sorted(operations["operations"]) == ["POST /checkout", "SELECT orders", "compute"]
    assert found["returned"] == 1
    summary = found["traces"][0]
    assert summary["trace_id"] == ids["checkout"]
    assert (summary["root_operation"], summary["root_service"]) == ("POST /checkout", "checkout")
    assert (summary["span_count"], summary["errors_count"], summary["service_count"]) == (3, 1, 1)
    assert summary["duration_us"] == 100_000 and summary["start_time_us"] == t0 // 1000
    assert [t["trace_id"] for t in ok["traces"]] == [ids["inventory"]]
    assert trace["span_count"] == 3 and trace["errors_count"] == 1 and trace["root_operation"] == "POST /checkout"
    parents = {s["operation_name"]: s["parent_span_id"] for s in trace["spans"]}
    assert parents == {"POST /checkout": None, "SELECT orders": ids["root"], "compute": ids["root"]}
    errors = {s["operation_name"]: s["is_error"] for s in trace["spans"]}
    assert errors == {"POST /checkout": True, "SELECT orders": False, "compute": False}
    assert path["critical_path"][0]["span_id"] == ids["root"]


def canonical(node):
    """OTLP attribute lists sorted by key: blocks may keep a span's attributes in another order."""
    if isinstance(node, dict):
        return {k: canonical(v) for k, v in node.items()}
    if isinstance(node, list):
        items = [canonical(v) for v in node]
        if items and all(isinstance(i, dict) and set(i) == {"key", "value"} for i in items):
            items.sort(key=lambda i: i["key"])
        return items
    return node


def test_results_are_the_same_from_blocks(world):
    """After the head is cut into blocks, every API gives the same answers (this test runs last: it flushes)."""
    server, t0, ids = world
    window = {"start": (t0 - 1_000 * MS) // 1000, "end": (t0 + 5_000 * MS) // 1000}
    queries = [("/api/traces", {**window, "tags": json.dumps({"http.status_code": "500"})}),
               ("/api/traces", {**window, "service": "inventory"}),
               (f"/api/traces/{ids['checkout']}", {}),
               ("/api/operations", {"service": "checkout"}),
               ("/api/v3/traces", {"query.service_name": "checkout"})]
    before = [get(server, path, **params).json() for path, params in queries]
    resp = requests.post(server.query_url + "/api/v1/flush", timeout=60)
    assert resp.status_code == 200 and resp.json()["blocks"] >= 1, resp.text
    after = [get(server, path, **params).json() for path, params in queries]
    for (path, params), b, a in zip(queries, before, after):
        a, b = canonical(a), canonical(b)
        assert a == b, f"{path} {params}:\n{json.dumps(b, sort_keys=True)}\n{json.dumps(a, sort_keys=True)}"
    assert traces_of(before[0]) == [ids["checkout"]] and traces_of(before[1]) == [ids["inventory"]]
