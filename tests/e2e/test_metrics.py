"""Self-telemetry on the telemetry port: /metrics counters follow what was sent."""

from __future__ import annotations

import json

import requests

from helpers import (
    Metrics,
    assert_full_success,
    proto_to_otlp_json,
    rand_trace_id,
    request_of,
    simple_request,
    simple_span,
)


def test_counters_follow_traffic(server):
    before = Metrics(server.metrics_text())  # counters may be absent before the first span

    sent = accepted = 0
    for _ in range(3):
        _, req = simple_request(5)
        assert_full_success(server.export_http_proto(req))
        sent += 5
        accepted += 5
    for _ in range(2):
        _, req = simple_request(4)
        assert_full_success(server.export_grpc(req))
        sent += 4
        accepted += 4
    _, req = simple_request(3)
    r = server.post_traces(json.dumps(proto_to_otlp_json(req)).encode(), "application/json")
    assert r.status_code == 200
    sent += 3
    accepted += 3
    zipkin = [{"traceId": rand_trace_id().hex(), "id": f"{i + 1:016x}", "name": "z", "timestamp": 1_700_000_000_000_000,
               "duration": 5, "localEndpoint": {"serviceName": "zsvc"}} for i in range(2)]
    r = requests.post(server.zipkin_url, json=zipkin, timeout=10)
    assert r.status_code == 202
    sent += 2
    accepted += 2

    # Partial success: two spans rejected for two different reasons.
    tid = rand_trace_id()
    backwards = simple_span(tid, name="backwards")
    backwards.end_time_unix_nano = backwards.start_time_unix_nano - 5
    partial = request_of([simple_span(tid), simple_span(b"\x00" * 16), backwards, simple_span(tid)])
    resp = server.export_http_proto(partial)
    assert resp.partial_success.rejected_spans == 2
    sent += 4
    accepted += 2

    after = Metrics(server.metrics_text())
    for name in ("clew_spans_received_total", "clew_spans_accepted_total", "clew_spans_rejected_total",
                 "clew_head_spans", "clew_wal_bytes"):
        assert after.has(name), f"{name} missing from /metrics:\n{after.text[:3000]}"
    d = lambda name: after.sum(name) - before.sum(name)
    assert d("clew_spans_received_total") == sent, after.text
    assert d("clew_spans_accepted_total") == accepted, after.text
    reasons_before = before.by_label("clew_spans_rejected_total", "reason")
    reasons = {k: v - reasons_before.get(k, 0) for k, v in after.by_label("clew_spans_rejected_total", "reason").items()}
    reasons = {k: v for k, v in reasons.items() if v}
    assert sum(reasons.values()) == 2, f"rejected by reason: {reasons}"
    assert len(reasons) == 2, f"a zero trace id and end-before-start should be two reasons: {reasons}"
    assert d("clew_spans_rejected_total") == 2

    # Histograms for request latency and WAL sync latency, which have observed something.
    hist = [n for n, t in after.types.items() if t == "histogram"]
    req_hist = [n for n in hist if "wal" not in n and any(w in n for w in ("request", "latency", "duration"))]
    wal_hist = [n for n in hist if "wal" in n and "sync" in n]
    assert req_hist, f"no request latency histogram among {hist}"
    assert wal_hist, f"no WAL sync latency histogram among {hist}"
    assert sum(after.sum(f"{n}_count") for n in req_hist) > 0
    assert sum(after.sum(f"{n}_count") for n in wal_hist) > 0

    assert after.sum("clew_head_spans") - before.sum("clew_head_spans") == accepted, after.text
    assert after.sum("clew_wal_bytes") > before.sum("clew_wal_bytes")
