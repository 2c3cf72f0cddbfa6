"""Span metrics: RED counted while ingesting, on the telemetry port's /metrics in OpenMetrics with exemplars
(parsed by the prometheus-client package's OpenMetrics parser), and the same traffic read back as historical RED
from storage through the native `/api/v1/metrics/red` and Jaeger's monitor endpoints `/api/metrics/...`."""

from __future__ import annotations

import json
import time

import pytest
import requests
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from helpers import Metrics, Span, Status, assert_full_success, rand_span_id, rand_trace_id, request_of, simple_span

MS = 1_000_000
SERVICE = "sm-api"
# (span name, duration ms, failed): three calls of GET /x (one failed), one of POST /y.
CALLS = [("GET /x", 3, False), ("GET /x", 10, False), ("GET /x", 50, True), ("POST /y", 700, False)]
BOUNDS = [0.002, 0.004, 0.006, 0.008, 0.01, 0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.4, 2.0, 5.0, 10.0, 15.0]


def send_traffic(server) -> tuple[int, list[tuple[bytes, bytes, str, int, bool]]]:
    """One trace per call, all starting at t0 (a minute ago, on a millisecond); half over OTLP/HTTP, half gRPC."""
    t0 = (time.time_ns() // MS - 60_000) * MS
    sent = []
    for i, (name, millis, failed) in enumerate(CALLS):
        trace_id, span_id = rand_trace_id(), rand_span_id()
        span = simple_span(trace_id, span_id, name=name, start=t0, duration=millis * MS, kind=Span.SPAN_KIND_SERVER)
        if failed:
            span.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message="boom"))
        request = request_of([span], service=SERVICE)
        response = server.export_http_proto(request) if i % 2 == 0 else server.export_grpc(request)
        assert_full_success(response)
        sent.append((trace_id, span_id, name, millis, failed))
    return t0, sent


def families(server) -> dict:
    r = requests.get(f"{server.telemetry_url}/metrics", timeout=10)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    assert r.text.endswith("# EOF\n")
    return {f.name: f for f in text_string_to_metric_families(r.text)}


def series(family, **labels):
    return [s for s in family.samples if all(s.labels.get(k) == v for k, v in labels.items())]


def test_live_red_metrics_with_exemplars(server):
    _, sent = send_traffic(server)
    fams = families(server)

    calls = fams["traces_span_metrics_calls"]
    assert calls.type == "counter"
    base = {"service_name": SERVICE, "span_kind": "SPAN_KIND_SERVER"}
    ok = series(calls, span_name="GET /x", status_code="STATUS_CODE_UNSET", **base)
    failed = series(calls, span_name="GET /x", status_code="STATUS_CODE_ERROR", **base)
    assert [s.value for s in ok] == [2.0] and [s.value for s in failed] == [1.0]
    # The counter's exemplar is the failed call's span.
    fail_trace, fail_span = sent[2][0], sent[2][1]
    assert failed[0].exemplar.labels == {"trace_id": fail_trace.hex(), "span_id": fail_span.hex()}

    duration = fams["traces_span_metrics_duration_seconds"]
    assert duration.type == "histogram" and duration.unit == "seconds"
    buckets = {
        s.labels["le"]: s for s in series(duration, span_name="GET /x", status_code="STATUS_CODE_UNSET", **base)
        if s.name.endswith("_bucket")
    }
    assert [buckets[le].value for le in ("0.002", "0.004", "0.008", "0.01", "+Inf")] == [0, 1, 1, 2, 2]
    # Each exemplar sits on the bucket its span fell in, with that span's ids and duration.
    for trace_id, span_id, name, millis, failed_call in sent[:2]:
        le = next(f"{b}" for b in BOUNDS if millis / 1000 <= b)
        exemplar = buckets[le].exemplar
        assert exemplar is not None, f"no exemplar on le={le}"
        assert exemplar.labels == {"trace_id": trace_id.hex(), "span_id": span_id.hex()}
        assert exemplar.value == pytest.approx(millis / 1000)
    assert buckets["0.002"].exemplar is None
    post = [s for s in series(duration, span_name="POST /y") if s.name.endswith("_bucket")]
    assert {s.labels["le"]: s.value for s in post}["0.4"] == 0 and {s.labels["le"]: s.value for s in post}["0.8"] == 1
    total = series(duration, span_name="GET /x", status_code="STATUS_CODE_UNSET")
    assert [s.value for s in total if s.name.endswith("_sum")] == [pytest.approx(0.013)]


def test_span_metrics_can_be_turned_off_and_configured(server_factory, tmp_path):
    config = tmp_path / "clew.toml"
    config.write_text('[span_metrics]\nexclude_dimensions = ["span.name"]\n'
                      'dimensions = [{ name = "deployment.environment", default = "none" }]\n')
    configured = server_factory("configured", extra_args=["--config", str(config)])
    send_traffic(configured)
    calls = families(configured)["traces_span_metrics_calls"]
    assert {s.labels.get("span_name") for s in calls.samples} == {None}
    unset = series(calls, service_name=SERVICE, status_code="STATUS_CODE_UNSET", deployment_environment="none")
    assert [s.value for s in unset] == [3.0]

    off = tmp_path / "off.toml"
    off.write_text("[span_metrics]\nenabled = false\n")
    quiet = server_factory("quiet", extra_args=["--config", str(off)])
    send_traffic(quiet)
    assert "traces_span_metrics_calls" not in families(quiet)


def test_historical_red_agrees_with_the_live_metrics(server):
    t0, _ = send_traffic(server)
    fams = families(server)
    calls = fams["traces_span_metrics_calls"]
    live_calls = sum(s.value for s in series(calls, service_name=SERVICE, span_name="GET /x"))
    live_errors = sum(s.value for s in series(fams["traces_span_metrics_calls"], service_name=SERVICE,
                                              span_name="GET /x", status_code="STATUS_CODE_ERROR"))

    # Whole seconds: t0 falls in the second bucket.
    start_s = t0 // 1_000_000_000 - 60
    start, end = start_s * 1_000_000_000, (start_s + 120) * 1_000_000_000
    r = requests.get(f"{server.query_url}/api/v1/metrics/red", timeout=15, params={
        "service": SERVICE, "operation": "GET /x", "start": start_s, "end": start_s + 120, "step": "60s"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["series"]) == 1
    s = body["series"][0]
    assert (s["service"], s["operation"]) == (SERVICE, "GET /x")
    assert [(p["calls"], p["errors"]) for p in s["points"]] == [(0, 0), (3, 1)]
    assert [int(p["start"]) for p in s["points"]] == [start, start + 60_000 * MS] and end > t0
    total = s["total"]
    assert (total["calls"], total["errors"]) == (live_calls, live_errors) == (3, 1)
    assert total["errorRatio"] == pytest.approx(1 / 3)
    assert total["p50"] == pytest.approx(0.010, rel=0.01) and total["p99"] == pytest.approx(0.050, rel=0.01)
    # The live histogram puts the median in the same bucket: the first whose cumulative count reaches half.
    buckets = sorted(
        (float(b.labels["le"]), b.value) for b in series(fams["traces_span_metrics_duration_seconds"],
                                                         service_name=SERVICE, span_name="GET /x")
        if b.name.endswith("_bucket")
    )
    merged: dict[float, float] = {}
    for le, v in buckets:
        merged[le] = merged.get(le, 0) + v
    median_le = next(le for le, v in sorted(merged.items()) if v >= 1.5)
    lower = max([b for b in BOUNDS if b < median_le], default=0)
    assert lower < total["p50"] <= median_le * 1.01

    bad = requests.get(f"{server.query_url}/api/v1/metrics/red", params={"step": "soon"}, timeout=15)
    assert bad.status_code == 400 and "step" in bad.json()["error"]["message"]


def test_jaeger_monitor_endpoints(server):
    t0, _ = send_traffic(server)
    end_ms = t0 // MS + 30_000
    params = {"service": SERVICE, "endTs": end_ms, "lookback": 300_000, "step": 60_000, "ratePer": 600_000}
    get = lambda what, **extra: requests.get(f"{server.query_url}/api/metrics/{what}",  # noqa: E731
                                             params={**params, **extra}, timeout=15)

    calls = get("calls").json()
    assert (calls["name"], calls["type"]) == ("service_call_rate", "GAUGE")
    (metric,) = calls["metrics"]
    assert metric["labels"] == [{"name": "service_name", "value": SERVICE}]
    points = metric["metricPoints"]
    assert len(points) == 6
    # Only the last point's 10-minute window holds the four calls.
    assert [p["gaugeValue"]["doubleValue"] for p in points] == [0, 0, 0, 0, 0, pytest.approx(4 / 600)]
    assert points[-1]["timestamp"] == time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(end_ms // 1000)) + \
        f".{end_ms % 1000:03d}Z"

    errors = get("errors").json()
    assert errors["name"] == "service_error_rate"
    assert [p["gaugeValue"]["doubleValue"] for p in errors["metrics"][0]["metricPoints"]] == [pytest.approx(0.25)]

    latencies = get("latencies", quantile=0.95).json()
    assert latencies["name"] == "service_latencies"
    (p95,) = latencies["metrics"][0]["metricPoints"]
    assert p95["gaugeValue"]["doubleValue"] == pytest.approx(700, rel=0.01)  # milliseconds

    by_op = get("calls", groupByOperation="true").json()
    assert by_op["name"] == "service_operation_call_rate"
    rates = {tuple(l["value"] for l in m["labels"]): m["metricPoints"][-1]["gaugeValue"]["doubleValue"]
             for m in by_op["metrics"]}
    assert rates == {(SERVICE, "GET /x"): pytest.approx(3 / 600), (SERVICE, "POST /y"): pytest.approx(1 / 600)}

    # A 2-minute window sliding by a minute: the calls are in the windows of the last two points only.
    sliding = get("calls", endTs=end_ms + 60_000, ratePer=120_000).json()["metrics"][0]["metricPoints"]
    assert [p["gaugeValue"]["doubleValue"] for p in sliding] == [0, 0, 0, 0, pytest.approx(4 / 120),
                                                                   pytest.approx(4 / 120)]
    median = get("latencies", quantile=0.5, endTs=end_ms + 60_000, ratePer=120_000).json()
    median = median["metrics"][0]["metricPoints"]
    assert [p["gaugeValue"]["doubleValue"] for p in median] == [pytest.approx(10, rel=0.01)] * 2

    # Client spans only: none were sent.
    assert get("calls", spanKind="client").json()["metrics"] == []
    assert get("latencies").status_code == 400  # quantile is required
    assert requests.get(f"{server.query_url}/api/metrics/calls", timeout=15).status_code == 400  # service too
    assert get("calls", spanKind="sideways").status_code == 400


def test_traceql_metrics_on_the_tempo_port(server):
    t0, _ = send_traffic(server)
    start_s = t0 // 60_000_000_000 * 60 - 60  # steps align to whole minutes; t0 falls in the second of two
    url = f"http://127.0.0.1:{server.ports['tempo']}/api/metrics/query_range"

    def query(q: str, **extra):
        r = requests.get(url, params={"q": q, "start": start_s, "end": start_s + 120, "step": "60s", **extra},
                         timeout=30)
        assert r.status_code == 200, r.text
        return r.json()["series"]

    def by_labels(series):
        return {tuple(l["value"].get("stringValue") for l in s["labels"]): [(int(p["timestampMs"]), p["value"])
                for p in s["samples"]] for s in series}

    start_ms = start_s * 1000
    counts = by_labels(query(f'{{ resource.service.name = "{SERVICE}" }} | count_over_time() by (name)'))
    assert counts == {("GET /x",): [(start_ms, 0), (start_ms + 60_000, 3)],
                      ("POST /y",): [(start_ms, 0), (start_ms + 60_000, 1)]}
    (rate,) = query(f'{{ resource.service.name = "{SERVICE}" && status = error }} | rate()')
    assert [p["value"] for p in rate["samples"]] == [0, pytest.approx(1 / 60)]
    assert rate["labels"] == [{"key": "__name__", "value": {"stringValue": "rate"}}]
    assert rate["promLabels"] == '{__name__="rate"}'
    (median,) = query(f'{{ name = "GET /x" }} | quantile_over_time(duration, 0.5)')
    assert median["labels"] == [{"key": "p", "value": {"doubleValue": 0.5}}]
    # 3, 10 and 50 ms lie in the power-of-two buckets up to 2^22, 2^24 and 2^26 ns: the median is the second bound.
    assert [p["value"] for p in median["samples"]] == [pytest.approx(0.016777216)]
    (slowest,) = query(f'{{ resource.service.name = "{SERVICE}" }} | max_over_time(duration)')
    assert [p["value"] for p in slowest["samples"]] == [pytest.approx(0.7)]
    bad = requests.get(url, params={"q": "{ } | rate(duration)"}, timeout=30)
    assert bad.status_code == 400 and "no arguments" in bad.text
    assert requests.get(url, params={"q": "{ nonsense"}, timeout=30).status_code == 400


def red_points(server, **params) -> list[tuple[int, int, int]]:
    """(bucket start, calls, errors) of the one series the native endpoint answers."""
    r = requests.get(f"{server.query_url}/api/v1/metrics/red", params=params, timeout=30)
    assert r.status_code == 200, r.text
    (s,) = r.json()["series"]
    return [(int(p["start"]), p["calls"], p["errors"]) for p in s["points"]]


def test_historical_red_from_flushed_and_compacted_blocks(server_factory):
    """Spans in two flushed blocks and in the head: per-block RED summaries (step and start on whole minutes)
    and span scans (unaligned) give the exact counts, which agree with the live metrics; again once compaction
    merged the blocks."""
    server = server_factory("red-blocks", extra_args=["--compaction-interval-secs", "3600"])
    service = "red-blocks"
    minute = 60_000 * MS
    t0 = (time.time_ns() // minute - 5) * minute  # five whole minutes ago
    # (minute offset, second offset, name, duration ms, failed), sent in three parts.
    parts = [
        [(0, 1, "GET /a", 5, False), (0, 59, "GET /a", 20, True), (1, 0, "GET /a", 7, False)],
        [(1, 30, "GET /a", 900, False), (2, 5, "POST /b", 40, False), (3, 59, "GET /a", 3, True)],
        [(2, 10, "GET /a", 60, False), (4, 0, "POST /b", 1, True)],  # left in the head
    ]
    for i, part in enumerate(parts):
        spans = []
        for m, s, name, millis, failed in part:
            span = simple_span(rand_trace_id(), rand_span_id(), name=name, start=t0 + m * minute + s * 1000 * MS,
                               duration=millis * MS, kind=Span.SPAN_KIND_SERVER)
            if failed:
                span.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message="boom"))
            spans.append(span)
        assert_full_success(server.export_http_proto(request_of(spans, service=service)))
        if i < 2:
            server._session.post(f"{server.query_url}/api/v1/flush", timeout=30).raise_for_status()
    metas = list((server.data_dir / "blocks").rglob("meta.json"))
    assert len(metas) == 2
    for meta in metas:
        assert json.loads(meta.read_text())["red_summary_bucket_nanos"] == [60 * 10**9, 3600 * 10**9, 86400 * 10**9]
        assert (meta.parent / "red-60s.pb").exists() and (meta.parent / "red-3600s.pb").exists()

    def expected(start: int, step: int, buckets: int, name: str | None = None) -> list[tuple[int, int, int]]:
        out = [[start + i * step, 0, 0] for i in range(buckets)]
        for m, s, span_name, _, failed in (c for part in parts for c in part):
            at = t0 + m * minute + s * 1000 * MS
            if (name is None or span_name == name) and start <= at < start + buckets * step:
                out[(at - start) // step][1] += 1
                out[(at - start) // step][2] += int(failed)
        return [tuple(p) for p in out]

    start_s = t0 // 10**9
    queries = [
        (dict(start=start_s, end=start_s + 300, step="60s"), (t0, minute, 5)),  # minute summaries
        (dict(start=start_s, end=start_s + 300, step="120s"), (t0, 2 * minute, 3)),
        (dict(start=start_s + 1, end=start_s + 301, step="45s"), (t0 + 1000 * MS, 45_000 * MS, 7)),  # scans
    ]

    def check():
        for params, (start, step, buckets) in queries:
            assert red_points(server, service=service, **params) == expected(start, step, buckets), params
            got = red_points(server, service=service, operation="GET /a", **params)
            assert got == expected(start, step, buckets, "GET /a"), params
        # The whole range agrees with what was counted while ingesting.
        fams = families(server)
        live = series(fams["traces_span_metrics_calls"], service_name=service)
        live_calls = sum(s.value for s in live)
        live_errors = sum(s.value for s in live if s.labels["status_code"] == "STATUS_CODE_ERROR")
        whole = red_points(server, service=service, start=start_s, end=start_s + 300)
        assert [(c, e) for _, c, e in whole] == [(live_calls, live_errors)] == [(8, 3)]

    check()
    server.stop()
    # Everything cut into blocks and merged into one (one window of a day holds them all).
    server = server_factory("red-blocks-compacted", data_dir=server.data_dir, extra_args=[
        "--compaction-interval-secs", "1", "--compaction-window-secs", "86400", "--block-cut-bytes", "1"])

    def settled():
        head = Metrics(server.metrics_text()).sum("clew_head_spans")
        return head == 0 and len(list((server.data_dir / "blocks").rglob("meta.json"))) == 1

    deadline = time.time() + 30
    while not settled() and time.time() < deadline:
        time.sleep(0.2)
    assert settled(), server.log_tail()
    # The live counters started again with the restart: compare the stored data with the spans sent only.
    for params, (start, step, buckets) in queries:
        assert red_points(server, service=service, **params) == expected(start, step, buckets), params
