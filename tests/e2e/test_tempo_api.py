"""Grafana Tempo's HTTP API on its own port: trace by id (v1 and v2, JSON and protobuf), tag names and
values (v1 and v2), echo, ready and build info.

Tempo writes traces with the protobuf JSON mapping (ids in base64, enums by name), so the bodies are
parsed here with protobuf's own JSON parser into OTLP messages and compared span by span with what
was sent.
"""

from __future__ import annotations

import pytest
from google.protobuf import json_format
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from helpers import assert_full_success, assert_same_spans, rand_trace_id
from test_roundtrip_handbuilt import rich_request
from test_search import flush, hex_id, send, trace


@pytest.fixture(scope="module")
def tempo(module_server_factory):
    """Traces 1-4 of the search data set in a block, 5-6 in the head, plus the full-fidelity request."""
    server = module_server_factory("tempo")
    for n in range(1, 5):
        send(server, trace(n))
    flush(server)
    for n in range(5, 7):
        send(server, trace(n))
    tid = rand_trace_id()
    req = rich_request(tid)
    assert_full_success(server.export_http_proto(req), "rich export")
    server.rich = (tid, req)
    return server


def get(server, path, status=200, **kwargs):
    r = server._session.get(f"{server.tempo_url}{path}", timeout=30, **kwargs)
    assert r.status_code == status, f"{path}: HTTP {r.status_code}: {r.text[:300]}"
    return r


def parse_tempo_json(resource_spans: list) -> TracesData:
    return json_format.ParseDict({"resourceSpans": resource_spans}, TracesData())


def test_trace_by_id_v1_json_is_protobuf_json_with_base64_ids(tempo):
    tid, req = tempo.rich
    r = get(tempo, f"/api/traces/{tid.hex()}")
    assert r.headers["Content-Type"].startswith("application/json")
    doc = r.json()
    assert list(doc) == ["batches"]
    span = doc["batches"][0]["scopeSpans"][0]["spans"][0]
    assert span["traceId"] != tid.hex() and len(span["traceId"]) == 24, span["traceId"]  # base64 of 16 bytes
    assert span["kind"].startswith("SPAN_KIND_"), span["kind"]
    assert_same_spans(parse_tempo_json(doc["batches"]), req, only_trace=tid)


def test_trace_by_id_v1_protobuf(tempo):
    tid, req = tempo.rich
    r = get(tempo, f"/api/traces/{tid.hex()}", headers={"Accept": "application/protobuf"})
    assert r.headers["Content-Type"] == "application/protobuf"
    assert_same_spans(TracesData.FromString(r.content), req, only_trace=tid)


def test_trace_by_id_v2_json_and_protobuf(tempo):
    tid, req = tempo.rich
    doc = get(tempo, f"/api/v2/traces/{tid.hex()}").json()
    assert doc["status"] == "COMPLETE"
    assert_same_spans(parse_tempo_json(doc["trace"]["resourceSpans"]), req, only_trace=tid)
    r = get(tempo, f"/api/v2/traces/{tid.hex()}", headers={"Accept": "application/protobuf"})
    # TraceByIDResponse: field 1 is the Trace, whose encoding is OTLP's TracesData.
    body = r.content
    assert body[0] == 0x0A, body[:4]
    length, pos = 0, 1
    for shift in range(0, 64, 7):
        b = body[pos]
        pos += 1
        length |= (b & 0x7F) << shift
        if b < 0x80:
            break
    assert pos + length == len(body)
    assert_same_spans(TracesData.FromString(body[pos:]), req, only_trace=tid)


def test_trace_by_id_from_a_block_and_with_a_window(tempo):
    doc = get(tempo, f"/api/traces/{hex_id(2)}").json()
    spans = [s for b in doc["batches"] for ss in b["scopeSpans"] for s in ss["spans"]]
    assert sorted(s["name"] for s in spans) == ["GET /item/2", "SELECT"]
    # Trace 2 started at 1_700_000_002 s: a window that ends before it skips its block.
    get(tempo, f"/api/traces/{hex_id(2)}?start=1600000000&end=1600000100", status=404)
    get(tempo, f"/api/traces/{hex_id(2)}?start=1700000000&end=1700000100")


@pytest.mark.parametrize("path,status", [
    ("/api/traces/zz", 400),
    ("/api/traces/0123456789abcdef0123456789abcdef01", 400),
    ("/api/traces/" + "00" * 15 + "01", 404),
    ("/api/v2/traces/" + "00" * 15 + "01", 404),
    ("/api/traces/" + "ab" * 16 + "?start=abc", 400),
    ("/api/traces/" + "ab" * 16 + "?start=200&end=100", 400),
])
def test_trace_by_id_errors_are_plain_text(tempo, path, status):
    r = get(tempo, path, status=status)
    assert r.headers["Content-Type"].startswith("text/plain")
    assert r.text.strip(), "an error needs a message"


def test_tag_names_v1_and_v2(tempo):
    names = get(tempo, "/api/search/tags").json()["tagNames"]
    for key in ["service.name", "http.status_code", "region", "db.system", "env"]:
        assert key in names, names
    assert names == sorted(names)
    scopes = {s["name"]: s["tags"] for s in get(tempo, "/api/v2/search/tags").json()["scopes"]}
    assert {"resource", "span", "intrinsic"} <= set(scopes)
    assert "env" in scopes["resource"] and "service.name" in scopes["resource"]
    assert "http.status_code" in scopes["span"] and "env" not in scopes["span"]
    assert {"name", "status", "duration", "kind"} <= set(scopes["intrinsic"])
    only = get(tempo, "/api/v2/search/tags?scope=span").json()["scopes"]
    assert [s["name"] for s in only] == ["span"]
    get(tempo, "/api/v2/search/tags?scope=nope", status=400)


def test_tag_values_v1_and_v2(tempo):
    values = get(tempo, "/api/search/tag/service.name/values").json()["tagValues"]
    assert {"svc-0", "svc-1", "db"} <= set(values), values
    typed = get(tempo, "/api/v2/search/tag/resource.service.name/values").json()["tagValues"]
    assert {"type": "string", "value": "db"} in typed
    codes = get(tempo, "/api/v2/search/tag/span.http.status_code/values").json()["tagValues"]
    assert {"type": "int", "value": "500"} in codes and {"type": "int", "value": "200"} in codes
    statuses = get(tempo, "/api/v2/search/tag/status/values").json()["tagValues"]
    assert {v["value"] for v in statuses} == {"error", "ok", "unset"}
    names = {v["value"] for v in get(tempo, "/api/v2/search/tag/name/values").json()["tagValues"]}
    assert {"SELECT", "GET /item/1", "GET /item/6"} <= names
    get(tempo, "/api/v2/search/tag/nonsense/values", status=400)


def test_echo_ready_buildinfo(tempo):
    assert get(tempo, "/api/echo").text == "echo"
    assert get(tempo, "/ready").text.strip() == "ready"
    info = get(tempo, "/api/status/buildinfo").json()
    assert info["version"]


def test_tenant_header_is_honoured(tempo):
    tid, _ = tempo.rich
    get(tempo, f"/api/traces/{tid.hex()}", headers={"X-Scope-OrgID": "someone-else"}, status=404)
    get(tempo, f"/api/traces/{tid.hex()}", headers={"X-Scope-OrgID": "bad tenant!"}, status=400)


