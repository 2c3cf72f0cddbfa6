"""TraceQL metrics on the Tempo port: known spans in (over OTLP/HTTP, the first minute flushed into a block, the
rest left in the head), exact series out of `/api/metrics/query_range` and `/api/metrics/query` for every
function, `by()`, `topk`/`bottomk`, exemplars that lead to real traces, and 400s with a message on bad queries.

No Tempo client library has a metrics query function (the Perses Tempo plugin has none), so the answers are
checked against the JSON shapes Tempo documents (`QueryRangeResponse`, `QueryInstantResponse` of pkg/tempopb)."""

from __future__ import annotations

import time

import pytest
import requests

from helpers import assert_full_success, rand_span_id, rand_trace_id, request_of, simple_span, Status

S = 1_000_000_000
MS = 1_000_000
STEP = 60
# (service, step 0..2, offset in the step in seconds, duration ms, failed)
SPANS = [
    ("tm-a", 0, 10, 3, False),
    ("tm-a", 0, 20, 10, False),
    ("tm-a", 0, 30, 12, False),
    ("tm-b", 0, 40, 5, False),
    ("tm-a", 1, 5, 20, True),
    ("tm-a", 1, 15, 1000, False),
    ("tm-c", 1, 25, 100, False),
    ("tm-b", 2, 10, 40, False),
    ("tm-b", 2, 50, 40, True),
]
SERVICES = ["tm-a", "tm-b", "tm-c"]


@pytest.fixture(scope="module")
def traffic(module_server_factory):
    """The spans above, one trace each; the first step's traces flushed into a block before the rest is sent."""
    server = module_server_factory("traceql-metrics")
    base = (time.time_ns() // (STEP * S) - 5) * STEP * S  # a whole minute, five minutes ago
    sent = []

    def send(rows):
        for service, step, offset, millis, failed in rows:
            trace_id, span_id = rand_trace_id(), rand_span_id()
            start = base + (step * STEP + offset) * S
            span = simple_span(trace_id, span_id, name=f"op-{service}", start=start, duration=millis * MS,
                               attrs={"http.status_code": 500 if failed else 200})
            if failed:
                span.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message="boom"))
            assert_full_success(server.export_http_proto(request_of([span], service=service)))
            sent.append({"service": service, "step": step, "start": start, "ms": millis, "failed": failed,
                         "trace_id": trace_id.hex(), "span_id": span_id.hex()})

    send([s for s in SPANS if s[1] == 0])
    flushed = server._session.post(f"{server.query_url}/api/v1/flush", timeout=30)
    assert flushed.status_code == 200 and flushed.json()["blocks"] == 1, flushed.text
    send([s for s in SPANS if s[1] > 0])
    return server, base, sent


def tempo(server, path, **params):
    return requests.get(f"{server.tempo_url}{path}", params=params, timeout=60)


def query_range(traffic, q, **extra):
    server, base, _ = traffic
    params = {"q": q, "start": base // S, "end": base // S + 3 * STEP, "step": f"{STEP}s", **extra}
    r = tempo(server, "/api/metrics/query_range", **params)
    assert r.status_code == 200, r.text
    body = r.json()
    check_range_shape(body)
    return body["series"]


def check_range_shape(body):
    """Tempo's QueryRangeResponse in protobuf JSON: camelCase names, int64 as strings."""
    assert set(body) <= {"series", "metrics", "status", "message"} and "series" in body
    for s in body["series"]:
        assert set(s) <= {"labels", "promLabels", "samples", "exemplars"}, s
        assert s["promLabels"].startswith("{") and s["promLabels"].endswith("}")
        for label in s["labels"]:
            assert set(label) == {"key", "value"} and len(label["value"]) == 1, label
            (kind,) = label["value"]
            assert kind in {"stringValue", "intValue", "doubleValue", "boolValue"}
        for p in s["samples"]:
            assert set(p) == {"timestampMs", "value"} and isinstance(p["timestampMs"], str), p
        for e in s.get("exemplars", []):
            assert set(e) == {"labels", "value", "timestampMs"} and isinstance(e["timestampMs"], str), e


def label_values(series):
    """Labels as a tuple of plain values (intValue as the int it encodes)."""
    out = []
    for label in series["labels"]:
        (kind, value) = next(iter(label["value"].items()))
        out.append((label["key"], int(value) if kind == "intValue" else value))
    return tuple(out)


def table(series):
    """{labels: [(step index, value), ...]} for a step-aligned range starting at the module's base."""
    return {label_values(s): [(int(p["timestampMs"]), p["value"]) for p in s["samples"]] for s in series}


def at(base, *values):
    """Samples for steps 0, 1, 2 (None: no sample in that step)."""
    return [(base // MS + i * STEP * 1000, v) for i, v in enumerate(values) if v is not None]


def svc(name):
    return (("resource.service.name", name),)


def log2_bucket_seconds(ms):
    """Tempo's histogram bucket: the smallest power of two at or above the duration in nanoseconds, in seconds."""
    ns = ms * MS
    return (1 << (ns - 1).bit_length()) / 1e9


def test_counts_and_rates_per_step_by_service(traffic):
    _, base, _ = traffic
    counts = table(query_range(traffic, "{ } | count_over_time() by (resource.service.name)"))
    assert counts == {svc("tm-a"): at(base, 3, 2, 0), svc("tm-b"): at(base, 1, 0, 2), svc("tm-c"): at(base, 0, 1, 0)}
    (total,) = query_range(traffic, "{ } | count_over_time()")
    assert total["labels"] == [{"key": "__name__", "value": {"stringValue": "count_over_time"}}]
    assert total["promLabels"] == '{__name__="count_over_time"}'
    assert table([total])[(("__name__", "count_over_time"),)] == at(base, 4, 3, 2)
    (b,) = query_range(traffic, '{ resource.service.name = "tm-b" } | count_over_time()')
    assert table([b])[(("__name__", "count_over_time"),)] == at(base, 1, 0, 2)
    (slow,) = query_range(traffic, "{ duration > 30ms } | count_over_time()")
    assert table([slow])[(("__name__", "count_over_time"),)] == at(base, 0, 2, 2)
    rates = table(query_range(traffic, "{ status = error } | rate() by (resource.service.name)"))
    assert rates == {svc("tm-a"): at(base, 0, 1 / 60, 0), svc("tm-b"): at(base, 0, 0, 1 / 60)}
    by_code = '{ resource.service.name = "tm-a" } | count_over_time() by (span.http.status_code)'
    codes = table(query_range(traffic, by_code))
    assert codes == {(("span.http.status_code", 200),): at(base, 3, 1, 0),
                     (("span.http.status_code", 500),): at(base, 0, 1, 0)}


def test_duration_functions_in_seconds(traffic):
    _, base, _ = traffic
    q = '{ resource.service.name = "tm-a" } | %s(duration)'
    assert table(query_range(traffic, q % "min_over_time"))[(("__name__", "min_over_time"),)] == at(base, 0.003, 0.02)
    assert table(query_range(traffic, q % "max_over_time"))[(("__name__", "max_over_time"),)] == at(base, 0.012, 1.0)
    (total,) = query_range(traffic, q % "sum_over_time")
    assert [p["value"] for p in total["samples"]] == [pytest.approx(0.025), pytest.approx(1.02)]
    (avg,) = query_range(traffic, q % "avg_over_time")
    assert [p["value"] for p in avg["samples"]] == [pytest.approx(0.025 / 3), pytest.approx(0.51)]
    # No span in the last step: no sample there (Tempo leaves the step out).
    assert [int(p["timestampMs"]) for p in avg["samples"]] == [base // MS, base // MS + 60_000]


def test_histogram_places_spans_in_power_of_two_buckets(traffic):
    _, base, sent = traffic
    got = table(query_range(traffic, "{ } | histogram_over_time(duration) by (resource.service.name)"))
    expected: dict = {}
    for s in sent:
        key = svc(s["service"]) + (("__bucket", log2_bucket_seconds(s["ms"])),)
        expected.setdefault(key, [0, 0, 0])[s["step"]] += 1
    assert got == {k: at(base, *v) for k, v in expected.items()}
    # 10 ms and 12 ms share (8.39 ms, 16.78 ms]; 3 ms is in (2.1 ms, 4.19 ms].
    assert got[svc("tm-a") + (("__bucket", 0.016777216),)] == at(base, 2, 0, 0)
    assert got[svc("tm-a") + (("__bucket", 0.004194304),)] == at(base, 1, 0, 0)
    ungrouped = table(query_range(traffic, "{ } | histogram_over_time(duration)"))
    assert ungrouped[(("__bucket", 0.067108864),)] == at(base, 0, 0, 2)


def test_quantiles_interpolate_between_buckets(traffic):
    _, base, _ = traffic
    got = table(query_range(traffic, '{ resource.service.name = "tm-a" } | quantile_over_time(duration, 0.5, 1)'))
    # Step 0: 3 ms in the 4.19 ms bucket, 10 and 12 ms in the 16.78 ms one. The median (2nd of 3) is halfway
    # into the upper bucket, exponentially: 2^23 ns. The maximum is the upper bucket's bound.
    median, top = got[(("p", 0.5),)], got[(("p", 1.0),)]
    assert [t for t, _ in median] == [base // MS, base // MS + 60_000]
    assert median[0][1] == pytest.approx(0.008388608)
    assert top[0][1] == pytest.approx(0.016777216)
    # Step 1: 20 ms and 1 s: the median is the first bucket's bound, the maximum the second's.
    assert median[1][1] == pytest.approx(0.033554432) and top[1][1] == pytest.approx(1.073741824)


def test_topk_and_bottomk_per_step(traffic):
    _, base, _ = traffic
    q = "{ } | count_over_time() by (resource.service.name) | %s"
    # Counts per step: a = 3, 2, 0; b = 1, 0, 2; c = 0, 1, 0.
    assert table(query_range(traffic, q % "topk(1)")) == {svc("tm-a"): at(base, 3, 2, None),
                                                           svc("tm-b"): at(base, None, None, 2)}
    assert table(query_range(traffic, q % "topk(2)")) == {svc("tm-a"): at(base, 3, 2, 0),
                                                           svc("tm-b"): at(base, 1, None, 2),
                                                           svc("tm-c"): at(base, None, 1, None)}
    # Step 2 ties a and c at 0: the series whose labels sort first wins.
    assert table(query_range(traffic, q % "bottomk(1)")) == {svc("tm-a"): at(base, None, None, 0),
                                                              svc("tm-b"): at(base, None, 0, None),
                                                              svc("tm-c"): at(base, 0, None, None)}
    assert len(query_range(traffic, q % "topk(10)")) == 3


def test_exemplars_point_to_real_traces(traffic):
    server, base, sent = traffic
    by_trace = {s["trace_id"]: s for s in sent}
    assert all("exemplars" not in s for s in query_range(traffic, "{ } | rate() by (resource.service.name)"))
    series = query_range(traffic, "{ } | rate() by (resource.service.name)", exemplars=100)
    seen = set()
    for s in series:
        service = label_values(s)[0][1]
        for e in s["exemplars"]:
            labels = {l["key"]: l["value"]["stringValue"] for l in e["labels"]}
            span = by_trace[labels["trace:id"]]
            assert span["service"] == service and labels["span:id"] == span["span_id"]
            assert int(e["timestampMs"]) == span["start"] // MS
            # A rate exemplar carries the rate of its step.
            step = (span["start"] - base) // (STEP * S)
            assert e["value"] == pytest.approx(s["samples"][step]["value"])
            seen.add(labels["trace:id"])
    # At most two per series and step: every trace but one of tm-a's three in its first minute.
    assert len(seen) == len(sent) - 1
    for trace_id in seen:
        assert tempo(server, f"/api/traces/{trace_id}").status_code == 200
    limited = query_range(traffic, "{ } | rate() by (resource.service.name)", exemplars=2)
    assert sum(len(s.get("exemplars", [])) for s in limited) == 2
    hinted = query_range(traffic, "{ } | histogram_over_time(duration) with(exemplars=true)")
    for s in hinted:
        bucket = dict(label_values(s))["__bucket"]
        for e in s["exemplars"]:
            span = by_trace[e["labels"][0]["value"]["stringValue"]]
            assert e["value"] == pytest.approx(span["ms"] / 1000) and log2_bucket_seconds(span["ms"]) == bucket
    assert all("exemplars" not in s for s in query_range(traffic, "{ } | rate() with(exemplars=false)", exemplars=5))


def test_instant_query_gives_one_value_per_series(traffic):
    server, base, _ = traffic
    window = {"start": base // S, "end": base // S + 3 * STEP}
    r = tempo(server, "/api/metrics/query", q="{ } | count_over_time() by (resource.service.name)", **window)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) <= {"series", "metrics", "status", "message"}
    for s in body["series"]:
        assert set(s) == {"labels", "promLabels", "value"}, s
    assert {label_values(s): s["value"] for s in body["series"]} == {svc("tm-a"): 5, svc("tm-b"): 3, svc("tm-c"): 1}
    assert {s["promLabels"] for s in body["series"]} == {f'{{resource.service.name="{n}"}}' for n in SERVICES}
    (rate,) = tempo(server, "/api/metrics/query", q="{ status = error } | rate()", **window).json()["series"]
    assert rate["value"] == pytest.approx(2 / 180)
    (worst,) = tempo(server, "/api/metrics/query", q="{ } | count_over_time() by (resource.service.name) | bottomk(1)",
                     **window).json()["series"]
    assert label_values(worst) == svc("tm-c") and worst["value"] == 1
    (slowest,) = tempo(server, "/api/metrics/query", q="{ } | max_over_time(duration)",
                       start=str(base), end=str(base + 3 * STEP * S)).json()["series"]  # nanoseconds
    assert slowest["value"] == 1.0


def test_times_in_seconds_nanoseconds_and_rfc3339_agree(traffic):
    _, base, _ = traffic
    q = "{ } | count_over_time()"
    seconds = query_range(traffic, q)
    nanos = query_range(traffic, q, start=str(base), end=str(base + 3 * STEP * S))
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(base // S))
    iso_end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(base // S + 3 * STEP))
    rfc = query_range(traffic, q, start=iso, end=iso_end, step="1m")
    assert seconds == nanos == rfc
    # Without a step, Tempo's default: about 240 points over the range, here 1 s for 3 minutes.
    server, _, _ = traffic
    r = tempo(server, "/api/metrics/query_range", q=q, start=base // S, end=base // S + 3 * STEP)
    (series,) = r.json()["series"]
    assert len(series["samples"]) == 180 and sum(p["value"] for p in series["samples"]) == 9
    # An unaligned start: steps stay on multiples of the step, spans before the start are not counted.
    (late,) = query_range(traffic, q, start=base // S + 15, end=base // S + 3 * STEP)
    assert [(int(p["timestampMs"]), p["value"]) for p in late["samples"]] == at(base, 3, 3, 2)


@pytest.mark.parametrize("params, message", [
    ({"q": "{ } | rate(duration)"}, "rate() takes no arguments"),
    ({"q": "{ .a = }"}, "invalid TraceQL query"),
    ({"q": "{ .a = 1 }"}, "not a metrics query"),
    ({"q": "{ } | rate() | topk(0)"}, "at least one series"),
    ({"q": "{ } | avg_over_time(name)"}, "needs a numeric field"),
    ({"q": "{ } | quantile_over_time(duration, 1.5)"}, "between 0 and 1"),
    ({"q": "{ } | compare({ status = error })"}, "not supported"),
    ({"q": "{ } | rate()", "step": "0s"}, "step must be positive"),
    ({"q": "{ } | rate()", "step": "soon"}, "step:"),
    ({"q": "{ } | rate()", "start": "200", "end": "100"}, "start must be before end"),
    ({"q": "{ } | rate()", "exemplars": "many"}, "exemplars:"),
    ({}, "q is required"),
])
def test_bad_queries_are_400_with_a_message(traffic, params, message):
    server, _, _ = traffic
    for path in ("/api/metrics/query_range", "/api/metrics/query"):
        if path.endswith("/query") and ("step" in params or "exemplars" in params):
            continue
        r = tempo(server, path, **params)
        assert r.status_code == 400, (path, r.status_code, r.text)
        assert message in r.text, (path, r.text)


def test_search_rejects_metrics_queries(traffic):
    server, _, _ = traffic
    r = tempo(server, "/api/search", q="{ } | rate()")
    assert r.status_code == 400 and "not supported in searches" in r.text, r.text
