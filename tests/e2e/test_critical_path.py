"""Critical path and per-service/operation statistics of a trace: `GET /api/v1/traces/{id}/critical-path`,
`GET /api/v1/traces/{id}/stats` and `clew trace <id> --critical-path`, on a hand-built trace whose path is known,
read from the head and again from a block."""

from __future__ import annotations

import subprocess
import time

import pytest

from helpers import Span, assert_full_success, rand_span_id, rand_trace_id, request_of, simple_span

MS = 1_000_000

# name: (service, parent, start ms, end ms, kind). The path, walking back from the root's end: publish ends
# last; then charge (audit is still running at charge's start, so it is off the path), inside charge the query
# (the cache lookup overlaps it), then auth. The consumer of the published message does not block the producer.
SPANS = {
    "GET /checkout": ("cp-front", None, 0, 100, Span.SPAN_KIND_SERVER),
    "auth": ("cp-front", "GET /checkout", 5, 25, Span.SPAN_KIND_CLIENT),
    "audit": ("cp-front", "GET /checkout", 10, 60, Span.SPAN_KIND_INTERNAL),
    "charge": ("cp-back", "GET /checkout", 30, 90, Span.SPAN_KIND_SERVER),
    "cache": ("cp-back", "charge", 35, 45, Span.SPAN_KIND_CLIENT),
    "SELECT": ("cp-back", "charge", 40, 70, Span.SPAN_KIND_CLIENT),
    "publish": ("cp-front", "GET /checkout", 92, 95, Span.SPAN_KIND_PRODUCER),
    "consume": ("cp-back", "publish", 96, 99, Span.SPAN_KIND_CONSUMER),
}

# (span, [(start ms, end ms)]) in path order.
EXPECTED_PATH = [
    ("GET /checkout", [(0, 5), (25, 30), (90, 92), (95, 100)]),
    ("auth", [(5, 25)]),
    ("charge", [(30, 40), (70, 90)]),
    ("SELECT", [(40, 70)]),
    ("publish", [(92, 95)]),
]

# service: (count, total ms, self ms). Self time: the root is covered by its children except 0-5, 90-92, 95-100;
# charge by cache and SELECT (35-70); the consumer runs after publish ended, so publish keeps its 3 ms.
EXPECTED_SERVICES = {
    "cp-back": (4, 60 + 10 + 30 + 3, 25 + 10 + 30 + 3),
    "cp-front": (4, 100 + 20 + 50 + 3, 12 + 20 + 50 + 3),
}
EXPECTED_OPERATIONS = [
    ("cp-back", "SELECT", 1, 30, 30),
    ("cp-back", "cache", 1, 10, 10),
    ("cp-back", "charge", 1, 60, 25),
    ("cp-back", "consume", 1, 3, 3),
    ("cp-front", "GET /checkout", 1, 100, 12),
    ("cp-front", "audit", 1, 50, 50),
    ("cp-front", "auth", 1, 20, 20),
    ("cp-front", "publish", 1, 3, 3),
]


def send_trace(server, tenant=None) -> tuple[bytes, dict[str, bytes], int]:
    """Sends the trace (one resource per service); returns its id, the span ids by name and its start (ns)."""
    trace_id = rand_trace_id()
    ids = {name: rand_span_id() for name in SPANS}
    t0 = (time.time_ns() // MS - 60_000) * MS  # a minute ago, on a millisecond
    by_service: dict[str, list] = {}
    for name, (service, parent, start, end, kind) in SPANS.items():
        span = simple_span(trace_id, ids[name], name=name, parent=ids[parent] if parent else b"",
                           start=t0 + start * MS, duration=(end - start) * MS, kind=kind)
        by_service.setdefault(service, []).append(span)
    request = request_of(by_service["cp-front"], service="cp-front")
    request.resource_spans.extend(request_of(by_service["cp-back"], service="cp-back").resource_spans)
    assert_full_success(server.export_http_proto(request, tenant=tenant))
    return trace_id, ids, t0


def get(server, trace_id: str, what: str, tenant=None):
    headers = {"X-Scope-OrgID": tenant} if tenant is not None else {}
    return server._session.get(f"{server.query_url}/api/v1/traces/{trace_id}/{what}", headers=headers, timeout=15)


def expected_path(ids, t0):
    return {"spans": [
        {"spanId": ids[name].hex(),
         "segments": [{"startUnixNano": str(t0 + s * MS), "endUnixNano": str(t0 + e * MS)} for s, e in segments]}
        for name, segments in EXPECTED_PATH
    ]}


def expected_stats():
    return {
        "services": [{"service": s, "count": c, "totalNanos": total * MS, "selfNanos": own * MS}
                     for s, (c, total, own) in sorted(EXPECTED_SERVICES.items())],
        "operations": [{"service": s, "name": n, "count": c, "totalNanos": total * MS, "selfNanos": own * MS}
                       for s, n, c, total, own in EXPECTED_OPERATIONS],
    }


def check_answers(server, trace_id: bytes, ids, t0, tenant=None):
    r = get(server, trace_id.hex(), "critical-path", tenant)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == expected_path(ids, t0)
    r = get(server, trace_id.hex(), "stats", tenant)
    assert r.status_code == 200, r.text
    assert r.json() == expected_stats()


def test_critical_path_and_stats_from_head_and_block(server):
    trace_id, ids, t0 = send_trace(server)
    check_answers(server, trace_id, ids, t0)
    r = server._session.post(f"{server.query_url}/api/v1/flush", timeout=60)
    assert r.status_code == 200 and r.json()["spans"] == len(SPANS), r.text
    check_answers(server, trace_id, ids, t0)


def test_tenants_and_bad_requests(server):
    trace_id, ids, t0 = send_trace(server, tenant="shop")
    check_answers(server, trace_id, ids, t0, tenant="shop")
    for what in ("critical-path", "stats"):
        # Another tenant does not see it; an unknown trace is 404 too.
        for tid, tenant in ((trace_id.hex(), None), (trace_id.hex(), "other"), (rand_trace_id().hex(), "shop")):
            r = get(server, tid, what, tenant)
            assert r.status_code == 404, (what, tid, tenant, r.status_code, r.text)
            assert "not found" in r.json()["error"]["message"]
        for bad in ("xyz", "zz" * 16, "0" * 33):
            r = get(server, bad, what, "shop")
            assert r.status_code == 400, (what, bad, r.status_code, r.text)
            assert r.json()["error"]["code"] == 400
        r = get(server, trace_id.hex(), what, "bad tenant")
        assert r.status_code == 400 and "X-Scope-OrgID" in r.json()["error"]["message"], r.text


def test_a_trace_of_one_span_is_its_own_path(server):
    trace_id = rand_trace_id()
    span = simple_span(trace_id, name="lonely", start=1_700_000_000_000_000_000, duration=7 * MS)
    assert_full_success(server.export_http_proto(request_of([span], service="solo")))
    r = get(server, trace_id.hex(), "critical-path")
    assert r.json() == {"spans": [{"spanId": span.span_id.hex(), "segments": [
        {"startUnixNano": "1700000000000000000", "endUnixNano": "1700000000007000000"}]}]}
    assert get(server, trace_id.hex(), "stats").json() == {
        "services": [{"service": "solo", "count": 1, "totalNanos": 7 * MS, "selfNanos": 7 * MS}],
        "operations": [{"service": "solo", "name": "lonely", "count": 1, "totalNanos": 7 * MS, "selfNanos": 7 * MS}],
    }


def test_a_consumer_ending_the_trace_follows_its_producer(server):
    # The root's work after publishing ran alongside the consumer and is not on the path; the queue wait is on no
    # span. The spans come in two requests, as a producer and a consumer would send them.
    trace_id = rand_trace_id()
    ids = {name: rand_span_id() for name in ("POST /order", "publish", "process")}
    t0 = (time.time_ns() // MS - 60_000) * MS
    root = simple_span(trace_id, ids["POST /order"], name="POST /order", start=t0, duration=100 * MS,
                       kind=Span.SPAN_KIND_SERVER)
    publish = simple_span(trace_id, ids["publish"], name="publish", parent=ids["POST /order"], start=t0 + 10 * MS,
                          duration=10 * MS, kind=Span.SPAN_KIND_PRODUCER)
    process = simple_span(trace_id, ids["process"], name="process", parent=ids["publish"], start=t0 + 50 * MS,
                          duration=100 * MS, kind=Span.SPAN_KIND_CONSUMER)
    assert_full_success(server.export_http_proto(request_of([root, publish], service="orders")))
    assert_full_success(server.export_http_proto(request_of([process], service="worker")))
    r = get(server, trace_id.hex(), "critical-path")
    assert r.status_code == 200, r.text
    segment = lambda s, e: {"startUnixNano": str(t0 + s * MS), "endUnixNano": str(t0 + e * MS)}  # noqa: E731
    assert r.json() == {"spans": [
        {"spanId": ids["POST /order"].hex(), "segments": [segment(0, 10)]},
        {"spanId": ids["publish"].hex(), "segments": [segment(10, 20)]},
        {"spanId": ids["process"].hex(), "segments": [segment(50, 150)]},
    ]}


def run_trace(clew_bin, server, trace_id: bytes, *flags) -> str:
    res = subprocess.run([clew_bin, "trace", trace_id.hex(), "--server", server.query_url, *flags],
                         capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, f"rc {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    return res.stdout


def line_of(out: str, name: str) -> str:
    lines = [line for line in out.splitlines() if line.endswith(f" {name}") or f" {name}  · " in line]
    assert len(lines) == 1, f"expected one line for {name!r}:\n{out}"
    return lines[0]


@pytest.mark.parametrize("from_block", [False, True])
def test_clew_trace_marks_the_critical_path(clew_bin, server, from_block):
    trace_id, _, _ = send_trace(server)
    if from_block:
        assert server._session.post(f"{server.query_url}/api/v1/flush", timeout=60).status_code == 200
    out = run_trace(clew_bin, server, trace_id, "--critical-path")
    lines = out.splitlines()
    assert lines[1] == "◆ = on the critical path: 5 spans, 100.0ms of 100.0ms", out
    on_path = {name: sum(e - s for s, e in segments) for name, segments in EXPECTED_PATH}
    for name in SPANS:
        line = line_of(out, name)
        if name in on_path:
            assert "◆ " in line and line.endswith(f" {name}  · {on_path[name]:.1f}ms on path"), f"{name}:\n{out}"
        else:
            assert "◆" not in line and "on path" not in line, f"{name}:\n{out}"
    assert "\x1b[" not in out  # not a terminal: no colour
    # Without the flag: no legend, no marks.
    plain = run_trace(clew_bin, server, trace_id)
    assert "◆" not in plain and "critical" not in plain and len(plain.splitlines()) == len(lines) - 1, plain


def test_clew_trace_critical_path_of_an_unknown_trace_fails(clew_bin, server):
    res = subprocess.run([clew_bin, "trace", rand_trace_id().hex(), "--server", server.query_url, "--critical-path"],
                         capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert res.returncode != 0 and "404" in res.stderr, res.stderr
