"""Clew's Tempo API driven by a real Tempo client: Perses' Tempo plugin (`@perses-dev/tempo-plugin`).

tests/tempo-client/drive-tempo.mjs runs the plugin's own code against the server: its Tempo client (search,
search with the serviceStats fallback that reads every trace by id, trace by id, tag names, tag values) and
its TraceQL editor completion, which parses the editor text with Grafana's lezer grammar and asks the API for
tag names and values. The script prints what that code made of Clew's responses; this file checks it
against the known data set.

Data (the search suite's traces 1-8): traces 1-4 flushed into a block, 5-8 in the head. Trace n has a root
`GET /item/n` (server, service svc-{n%2}, resource env) and a child `SELECT` (client, service db, error when
n % 4 == 0). Needs Node.js and `npm ci` in tests/tempo-client (scripts/test.sh does both).
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from test_search import flush, hex_id, send, tid, trace

REPO = Path(__file__).resolve().parents[2]
CLIENT_DIR = REPO / "tests" / "tempo-client"
START, END = 1_699_999_000, 1_700_001_000  # seconds; the data set starts at 1_700_000_001
WINDOW = {"start": START, "end": END}
SPAN_TAGS = {"http.status_code", "region", "ratio", "db.system"}
RESOURCE_TAGS = {"service.name", "env"}
SERVICES = {"svc-0", "svc-1", "db"}

CALLS = [
    {"id": "search", "fn": "search",
     "params": {"q": '{ resource.service.name = "db" && status = error }', "limit": 20, "spss": 2, **WINDOW}},
    {"id": "search_limit", "fn": "search", "params": {"q": "{ }", "limit": 3, **WINDOW}},
    {"id": "fallback", "fn": "searchWithFallback", "params": {"q": "{ status = error }", **WINDOW}},
    {"id": "fallback_empty", "fn": "searchWithFallback", "params": {"q": '{ name = "nope" }', **WINDOW}},
    {"id": "trace_block", "fn": "query", "params": {"traceId": hex_id(2)}},
    {"id": "trace_head", "fn": "query", "params": {"traceId": hex_id(7)}},
    {"id": "trace_unknown", "fn": "query", "params": {"traceId": "00" * 15 + "01"}},
    {"id": "search_bad_query", "fn": "search", "params": {"q": "{ .a = }", **WINDOW}},
    {"id": "tags_resource", "fn": "searchTags", "params": {"scope": "resource"}},
    {"id": "tags_span", "fn": "searchTags", "params": {"scope": "span"}},
    {"id": "tags_intrinsic", "fn": "searchTags", "params": {"scope": "intrinsic"}},
    {"id": "values_service", "fn": "searchTagValues", "params": {"tag": "resource.service.name"}},
    {"id": "values_status", "fn": "searchTagValues", "params": {"tag": "status"}},
    {"id": "complete_resource", "fn": "complete", "doc": "{ resource."},
    {"id": "complete_span", "fn": "complete", "doc": "{ span."},
    {"id": "complete_unscoped", "fn": "complete", "doc": "{ ."},
    {"id": "complete_start", "fn": "complete", "doc": "{ "},
    {"id": "complete_service_value", "fn": "complete", "doc": '{ resource.service.name = "'},
    {"id": "complete_status_value", "fn": "complete", "doc": "{ status="},
] + [{"id": f"valid_{n}", "fn": "isValidTraceId", "traceId": hex_id(n)} for n in (4, 8)]


@pytest.fixture(scope="module")
def results(module_server_factory, tmp_path_factory) -> dict:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (Node.js >= 20 runs the Perses Tempo client)", pytrace=False)
    if not (CLIENT_DIR / "node_modules" / "@perses-dev" / "tempo-plugin").is_dir():
        pytest.fail(f"run `npm ci` in {CLIENT_DIR} first", pytrace=False)
    server = module_server_factory("tempo-client")
    for n in range(1, 5):
        send(server, trace(n))
    flush(server)
    for n in range(5, 9):
        send(server, trace(n))
    calls = tmp_path_factory.mktemp("tempo-client") / "calls.json"
    calls.write_text(json.dumps(CALLS))
    out = subprocess.run([node, str(CLIENT_DIR / "drive-tempo.mjs"), server.tempo_url, str(calls)],
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, f"drive-tempo.mjs failed:\n{out.stderr}"
    return json.loads(out.stdout)


def ok(results: dict, call_id: str):
    res = results[call_id]
    assert "ok" in res, f"{call_id}: the client raised {res.get('error')}"
    return res["ok"]


def failed(results: dict, call_id: str) -> dict:
    res = results[call_id]
    assert "error" in res, f"{call_id}: expected the client to raise, got {str(res.get('ok'))[:300]}"
    return res["error"]


def spans_by_service(batches: list) -> dict[str, list[dict]]:
    """service.name -> spans, read the way the plugin's serviceStats fallback reads a trace."""
    out: dict[str, list[dict]] = {}
    for batch in batches:
        attrs = {a["key"]: a["value"] for a in batch["resource"]["attributes"]}
        service = attrs["service.name"]["stringValue"]
        for scope in batch["scopeSpans"]:
            out.setdefault(service, []).extend(scope["spans"])
    return out


def test_search_returns_the_matching_traces_newest_first(results):
    doc = ok(results, "search")
    traces = doc["traces"]
    assert [t["traceID"] for t in traces] == [hex_id(8), hex_id(4)]
    first = traces[0]
    assert first["rootServiceName"] == "svc-0" and first["rootTraceName"] == "GET /item/8"
    assert first["startTimeUnixNano"] == str(1_700_000_008_000_000_000)
    assert first["durationMs"] == 81  # the child ends 1 ms + 80 ms after the root starts
    (spanset,) = first["spanSets"]
    assert spanset["matched"] == 1
    (span,) = spanset["spans"]
    assert span["name"] == "SELECT" and span["durationNanos"] == str(80_000_000)
    assert span["spanID"] == bytes([2] * 7 + [8]).hex()


def test_search_limit_and_trace_ids_perses_accepts(results):
    assert [t["traceID"] for t in ok(results, "search_limit")["traces"]] == [hex_id(n) for n in (8, 7, 6)]
    # Perses looks a query string up as a trace id when isValidTraceId says so: Clew's ids must pass.
    assert ok(results, "valid_4") is True and ok(results, "valid_8") is True


def test_search_with_fallback_computes_service_stats_from_traces_by_id(results):
    # Clew's search results carry no serviceStats, so the plugin fetches each trace by id and counts spans
    # and errors per service from the resource attributes and span status codes of Clew's trace JSON.
    traces = ok(results, "fallback")["traces"]
    assert [t["traceID"] for t in traces] == [hex_id(8), hex_id(4)]
    for t in traces:
        assert t["serviceStats"] == {"svc-0": {"spanCount": 1}, "db": {"spanCount": 1, "errorCount": 1}}, t
    assert ok(results, "fallback_empty") == {"traces": []}


@pytest.mark.parametrize("call_id,n,service", [("trace_block", 2, "svc-0"), ("trace_head", 7, "svc-1")])
def test_trace_by_id(results, call_id, n, service):
    doc = ok(results, call_id)
    by_service = spans_by_service(doc["batches"])
    assert {s: [sp["name"] for sp in spans] for s, spans in by_service.items()} == {
        service: [f"GET /item/{n}"], "db": ["SELECT"]}
    root, child = by_service[service][0], by_service["db"][0]
    # Tempo writes ids in base64; the plugin converts them to hex when they are not 32/16 characters long.
    assert base64.b64decode(root["traceId"]) == tid(n) and len(root["traceId"]) != 32
    assert base64.b64decode(child["parentSpanId"]) == base64.b64decode(root["spanId"]) == bytes([1] * 7 + [n])
    assert root["kind"] == "SPAN_KIND_SERVER" and child["kind"] == "SPAN_KIND_CLIENT"


def test_client_errors_carry_status_and_message(results):
    err = failed(results, "trace_unknown")
    assert err["status"] == 404 and err["message"].strip()
    err = failed(results, "search_bad_query")
    assert err["status"] == 400 and err["message"].strip(), err


def test_tag_names_per_scope(results):
    for call_id, scope, want in [("tags_resource", "resource", RESOURCE_TAGS), ("tags_span", "span", SPAN_TAGS)]:
        (only,) = ok(results, call_id)["scopes"]
        assert only["name"] == scope and set(only["tags"]) == want, only
    (intrinsic,) = ok(results, "tags_intrinsic")["scopes"]
    assert intrinsic["name"] == "intrinsic" and {"name", "status", "duration", "kind"} <= set(intrinsic["tags"])


def test_tag_values_are_typed(results):
    values = ok(results, "values_service")["tagValues"]
    assert sorted((v["type"], v["value"]) for v in values) == sorted(("string", s) for s in SERVICES)
    values = ok(results, "values_status")["tagValues"]
    assert sorted((v["type"], v["value"]) for v in values) == [("keyword", s) for s in ("error", "ok", "unset")]


def labels(completion: dict) -> set[str]:
    return {o["label"] for o in completion["options"]}


def test_editor_completes_scoped_and_unscoped_tag_names(results):
    assert labels(ok(results, "complete_resource")) == RESOURCE_TAGS
    assert labels(ok(results, "complete_span")) == SPAN_TAGS
    assert labels(ok(results, "complete_unscoped")) == RESOURCE_TAGS | SPAN_TAGS
    start = ok(results, "complete_start")
    assert {"span", "resource", "name", "status", "duration", "kind"} <= labels(start)
    assert start["from"] == 2


def test_editor_completes_tag_values(results):
    services = ok(results, "complete_service_value")
    assert labels(services) == SERVICES
    assert all(o["quoted"] for o in services["options"]), "string values are inserted with quotes"
    assert services["from"] == len('{ resource.service.name = "')
    statuses = ok(results, "complete_status_value")
    assert labels(statuses) == {"error", "ok", "unset"}
    assert not any(o["quoted"] for o in statuses["options"]), "keywords are inserted bare"
