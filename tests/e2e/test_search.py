"""Trace search, listings and the OpenAPI document of the native API, over the head and blocks.

Traces are hand-built OTLP requests with known properties; some are flushed into blocks with
POST /api/v1/flush, one is split between a block and the head. Every query is checked against the
exact list of expected trace ids, in order (newest first).
"""

from __future__ import annotations

import subprocess

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from helpers import (
    ExportRequest,
    InstrumentationScope,
    Resource,
    ResourceSpans,
    ScopeSpans,
    Span,
    assert_full_success,
    kvs,
    simple_span,
)

BASE = 1_700_000_000_000_000_000
S = 1_000_000_000
MS = 1_000_000
N = 12


def tid(n: int) -> bytes:
    return bytes([0xAB] * 12) + n.to_bytes(4, "big")


def hex_id(n: int) -> str:
    return tid(n).hex()


def rs(service: str, spans, resource_attrs=None) -> ResourceSpans:
    return ResourceSpans(
        resource=Resource(attributes=kvs({"service.name": service, **(resource_attrs or {})})),
        scope_spans=[ScopeSpans(scope=InstrumentationScope(name="e2e"), spans=list(spans))],
    )


def trace(n: int) -> tuple[ResourceSpans, ResourceSpans]:
    """Trace n: root `GET /item/n` (server, svc-{n%2}, n ms) and child `SELECT` (client, db, 10n ms,
    error when n % 4 == 0)."""
    start = BASE + n * S
    root_id = bytes([1] * 7 + [n])
    root = simple_span(tid(n), root_id, name=f"GET /item/{n}", start=start, duration=n * MS,
                       kind=Span.SPAN_KIND_SERVER,
                       attrs={"http.status_code": 500 if n % 3 == 0 else 200, "region": ["eu-west", "us-east"][n % 2],
                              "ratio": n / 10})
    child = simple_span(tid(n), bytes([2] * 7 + [n]), name="SELECT", parent=root_id, start=start + MS,
                        duration=10 * n * MS, kind=Span.SPAN_KIND_CLIENT, attrs={"db.system": "postgres"})
    if n % 4 == 0:
        child.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message="boom"))
    return rs(f"svc-{n % 2}", [root], {"env": "prod" if n <= 6 else "dev"}), rs("db", [child])


def expected(pred) -> list[str]:
    return [hex_id(n) for n in range(N, 0, -1) if pred(n)]


def send(server, resource_spans, tenant=None):
    resp = server.export_http_proto(ExportRequest(resource_spans=list(resource_spans)), tenant=tenant)
    assert_full_success(resp, "export")


def flush(server):
    r = server._session.post(f"{server.query_url}/api/v1/flush", timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="module")
def populated(module_server_factory):
    """Traces 1-4 in a first block, 5-8 and trace 12's root in a second, 9-11 and 12's child in the head."""
    server = module_server_factory("search")
    for n in range(1, 5):
        send(server, trace(n))
    assert flush(server)["blocks"] == 1
    for n in range(5, 9):
        send(server, trace(n))
    root12, child12 = trace(12)
    send(server, [root12])
    assert flush(server)["blocks"] == 1
    for n in range(9, 12):
        send(server, trace(n))
    send(server, [child12])
    send(server, [rs("other-svc", [simple_span(tid(99), name="other", start=BASE)])], tenant="team-b")
    return server


def search(server, params, tenant=None, status=200):
    headers = {"X-Scope-OrgID": tenant} if tenant else {}
    r = server._session.get(f"{server.query_url}/api/v1/search", params=params, headers=headers, timeout=30)
    assert r.status_code == status, r.text
    return r.json()


def ids(server, params, tenant=None) -> list[str]:
    return [t["traceId"] for t in search(server, {"limit": 1000, **params}, tenant)["traces"]]


CASES = [
    ({}, lambda n: True),
    ({"service": "db"}, lambda n: True),
    ({"service": "svc-1"}, lambda n: n % 2 == 1),
    ({"service": "svc-1", "name": "SELECT"}, lambda n: False),
    ({"name": "GET /item/7"}, lambda n: n == 7),
    ({"attr": "http.status_code=500"}, lambda n: n % 3 == 0),
    ({"attr": "http.status_code>=300"}, lambda n: n % 3 == 0),
    ({"attr": "http.status_code!=500"}, lambda n: n % 3 != 0),
    ({"attr": "http.status_code<500"}, lambda n: n % 3 != 0),
    ({"attr": "http.status_code=\"500\""}, lambda n: False),
    ({"attr": "ratio>0.85"}, lambda n: n >= 9),
    ({"attr": "ratio<=1"}, lambda n: n <= 10),
    ({"attr": "region=~eu-.*"}, lambda n: n % 2 == 0),
    ({"attr": "region!~eu-.*"}, lambda n: n % 2 == 1),
    ({"attr": "region=eu"}, lambda n: False),
    ({"attr": "env=prod"}, lambda n: n <= 6),
    ({"attr": ["region=us-east", "http.status_code=500"]}, lambda n: n % 2 == 1 and n % 3 == 0),
    ({"attr": ["region=us-east", "db.system=postgres"]}, lambda n: False),
    ({"kind": "client", "status": "error"}, lambda n: n % 4 == 0),
    ({"status": "unset", "kind": "client"}, lambda n: n % 4 != 0),
    ({"kind": "producer"}, lambda n: False),
    ({"kind": "server", "minDuration": "10ms"}, lambda n: n >= 10),
    ({"kind": "client", "maxDuration": "30ms"}, lambda n: n <= 3),
    ({"minDuration": "40ms", "maxDuration": "0.06s"}, lambda n: 4 <= n <= 6),
    ({"start": str((BASE + 5 * S) // S), "end": "2023-11-14T22:13:29Z"}, lambda n: 5 <= n <= 9),
]


@pytest.mark.parametrize("params,pred", CASES, ids=[str(c[0]) for c in CASES])
def test_search_returns_exactly_the_matching_traces_newest_first(populated, params, pred):
    assert ids(populated, params) == expected(pred)


def test_summaries_cover_the_whole_trace_across_head_and_blocks(populated):
    found = search(populated, {"service": "db", "minDuration": "115ms"})
    assert found["nextCursor"] is None
    assert found["traces"] == [{
        "traceId": hex_id(12),
        "rootServiceName": "svc-0",
        "rootSpanName": "GET /item/12",
        "startTimeUnixNano": str(BASE + 12 * S),
        "durationNanos": str(MS + 120 * MS),
        "spanCount": 2,
        "errorCount": 1,
        "services": ["db", "svc-0"],
        "matchedSpans": 1,
    }]
    every = search(populated, {"limit": 1000})["traces"]
    assert all(t["spanCount"] == 2 and t["matchedSpans"] == 2 for t in every), every


def test_paging_returns_every_match_once_in_order(populated):
    for params in ({}, {"attr": "http.status_code<500"}):
        want = ids(populated, params)
        got, cursor, pages = [], None, 0
        while True:
            page = search(populated, {**params, "limit": 5, **({"cursor": cursor} if cursor else {})})
            assert len(page["traces"]) <= 5
            got += [t["traceId"] for t in page["traces"]]
            pages += 1
            cursor = page["nextCursor"]
            if cursor is None:
                break
        assert got == want
        assert pages == -(-len(want) // 5)
    assert len(search(populated, {})["traces"]) == N, "default limit 20"


def test_tenants_are_isolated(populated):
    assert ids(populated, {}, tenant="team-b") == [tid(99).hex()]
    assert tid(99).hex() not in ids(populated, {})
    assert ids(populated, {}, tenant="nobody") == []


@pytest.mark.parametrize("params,param", [
    ({"minDuration": "fast"}, "minDuration"),
    ({"maxDuration": "5"}, "maxDuration"),
    ({"attr": "http.status_code~5"}, "attr"),
    ({"attr": "route=~(unclosed"}, "attr"),
    ({"limit": "0"}, "limit"),
    ({"limit": "1001"}, "limit"),
    ({"limit": "many"}, "limit"),
    ({"cursor": "not-a-cursor"}, "cursor"),
    ({"start": "yesterday"}, "start"),
    ({"end": "2023-13-01T00:00:00Z"}, "end"),
    ({"kind": "sideways"}, "kind"),
    ({"status": "meh"}, "status"),
])
def test_bad_parameters_are_400_naming_the_parameter(populated, params, param):
    body = search(populated, params, status=400)
    assert body["error"]["code"] == 400
    assert param in body["error"]["message"], body


def test_listings(populated):
    get = lambda path, **kw: populated._session.get(f"{populated.query_url}/api/v1/{path}", timeout=30, **kw)
    assert get("services").json() == {"services": ["db", "svc-0", "svc-1"]}
    assert get("services", headers={"X-Scope-OrgID": "team-b"}).json() == {"services": ["other-svc"]}
    assert get("services/db/operations").json() == {"operations": [{"name": "SELECT", "kind": "client"}]}
    ops = get("services/svc-1/operations").json()["operations"]
    assert ops == [{"name": f"GET /item/{n}", "kind": "server"} for n in sorted(range(1, N + 1, 2), key=lambda n: f"GET /item/{n}")]
    attrs = get("attributes").json()["attributes"]
    for key, scope in [("http.status_code", "span"), ("region", "span"), ("db.system", "span"), ("env", "resource"),
                       ("service.name", "resource")]:
        assert {"key": key, "scope": scope} in attrs, attrs
    values = get("attributes/region/values").json()["values"]
    assert values == [{"value": "eu-west", "count": 6}, {"value": "us-east", "count": 6}]
    values = get("attributes/http.status_code/values", params={"limit": 1}).json()["values"]
    assert values == [{"value": "200", "count": 8}]
    assert get("attributes/region/values", params={"limit": "x"}).status_code == 400


def test_openapi_documents_every_route(populated):
    doc = populated._session.get(f"{populated.query_url}/api/v1/openapi.json", timeout=10).json()
    assert doc["openapi"].startswith("3.")
    for path, method in [("/api/v1/traces/{traceId}", "get"), ("/api/v1/flush", "post"), ("/api/v1/search", "get"),
                         ("/api/v1/services", "get"), ("/api/v1/services/{service}/operations", "get"),
                         ("/api/v1/attributes", "get"), ("/api/v1/attributes/{key}/values", "get"),
                         ("/api/v1/openapi.json", "get")]:
        assert method in doc["paths"][path], path
    # Every documented GET without path parameters answers: without parameters when none is required, and
    # with a placeholder for each required one.
    for path, item in doc["paths"].items():
        if "get" in item and "{" not in path:
            required = [p["name"] for p in item["get"].get("parameters", []) if p.get("required")]
            params = {name: "{ }" if name == "q" else "x" for name in required}
            r = populated._session.get(f"{populated.query_url}{path}", params=params, timeout=30)
            assert r.status_code == 200, (path, r.text)
            if required:
                r = populated._session.get(f"{populated.query_url}{path}", timeout=30)
                assert r.status_code == 400, (path, "a missing required parameter is a 400")


def test_clew_search_prints_the_rows(populated, clew_bin):
    out = subprocess.run([clew_bin, "search", "--server", populated.query_url, "--service", "db", "--attr",
                          "db.system=postgres", "--min-duration", "95ms", "--limit", "5"],
                         capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0].split() == ["START", "TRACE", "ID", "ROOT", "SERVICE", "ROOT", "NAME", "DURATION", "SPANS", "ERRORS"]
    rows = [line.split("  ") for line in lines[1:]]
    rows = [[c.strip() for c in row if c.strip()] for row in rows]
    assert [r[1] for r in rows] == expected(lambda n: n >= 10)
    assert rows[0] == ["2023-11-14T22:13:32.000Z", hex_id(12), "svc-0", "GET /item/12", "121.0ms", "2", "1"]
    bad = subprocess.run([clew_bin, "search", "--server", populated.query_url, "--min-duration", "soon"],
                         capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert bad.returncode != 0 and "minDuration" in bad.stderr
