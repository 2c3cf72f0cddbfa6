"""The load generator and the benchmark harness, driven through the real binary.

Full benchmark runs take minutes and live in BENCHMARKS.md; here each scenario runs on a few thousand spans so
the harness cannot rot, and loadgen's acknowledged count is held against what Clew actually stored.
"""

from __future__ import annotations

import json
import subprocess

from helpers import Metrics


def run_clew(clew_bin, *args, timeout=180):
    proc = subprocess.run([clew_bin, *args], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"clew {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def loadgen(clew_bin, endpoint, *args):
    out = run_clew(clew_bin, "loadgen", "--endpoint", endpoint, "--json", *args)
    return json.loads(out)


def test_loadgen_sends_again_what_a_full_head_refused(server_factory, clew_bin):
    """A head much smaller than the load, with no wait for room, refuses requests with RESOURCE_EXHAUSTED until
    cuts make room; the load generator backs off and sends them again, as an OpenTelemetry SDK does, so every
    span gets in."""
    server = server_factory("full-head", extra_args=["--head-max-bytes", "600000", "--block-cut-bytes", "100000",
                                                     "--head-full-wait-ms", "0"])
    report = loadgen(clew_bin, f"http://{server.grpc_target}", "--traces", "400", "--batch-spans", "1000",
                     "--concurrency", "4")
    assert report["retries"] > 0, report
    assert "head is full" in report["first_retry_reason"], report
    assert report["failed_spans"] == 0 and report["acknowledged_spans"] == 4000, report
    found = server._session.get(f"{server.query_url}/api/v1/search", params={"limit": 1000}, timeout=30).json()
    assert len(found["traces"]) == 400


def test_a_full_head_holds_requests_until_a_cut_makes_room(server_factory, clew_bin):
    """With the default wait, the same load is held while cuts make room instead of refused: nothing needs to be
    sent again, and every span gets in."""
    server = server_factory("full-head-wait", extra_args=["--head-max-bytes", "600000", "--block-cut-bytes", "100000"])
    report = loadgen(clew_bin, f"http://{server.grpc_target}", "--traces", "400", "--batch-spans", "1000",
                     "--concurrency", "4")
    assert report["retries"] == 0, report
    assert report["failed_spans"] == 0 and report["acknowledged_spans"] == 4000, report
    found = server._session.get(f"{server.query_url}/api/v1/search", params={"limit": 1000}, timeout=30).json()
    assert len(found["traces"]) == 400


def test_loadgen_acknowledged_count_matches_what_clew_stores(server, clew_bin, tmp_path):
    ids_file = tmp_path / "ids.txt"
    grpc = loadgen(clew_bin, f"http://{server.grpc_target}", "--traces", "300", "--batch-spans", "200",
                   "--concurrency", "4", "--ids-out", str(ids_file))
    http = loadgen(clew_bin, server.http_url, "--protocol", "http/protobuf", "--profile", "microservices",
                   "--traces", "100", "--seed", "5")
    json_report = loadgen(clew_bin, server.http_url, "--protocol", "http/json", "--profile", "microservices",
                          "--traces", "20", "--seed", "6")
    for report in (grpc, http, json_report):
        assert report["failed_spans"] == 0 and report["rejected_spans"] == 0, report
    assert grpc["acknowledged_spans"] == 3000 and grpc["acknowledged_traces"] == 300

    metrics = Metrics(server.metrics_text())
    acknowledged = grpc["acknowledged_spans"] + http["acknowledged_spans"] + json_report["acknowledged_spans"]
    assert metrics.sum("clew_head_spans") == acknowledged
    assert metrics.sum("clew_spans_accepted_total") == acknowledged

    ids = [line.split() for line in ids_file.read_text().splitlines()]
    assert len(ids) == 300
    starts = [int(start) for _, start in ids]
    assert starts == sorted(starts), "ids file is ordered by start time"
    for trace_id, _ in ids[::37]:
        trace = server.get_trace(trace_id)
        assert trace.status_code == 200, trace_id
        spans = [s for rs in trace.json()["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
        assert len(spans) == 10
        assert all(len(s["attributes"]) == 11 for s in spans)


def test_loadgen_same_seed_sends_the_same_traces(server, clew_bin, tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    for out in (a, b):
        loadgen(clew_bin, f"http://{server.grpc_target}", "--traces", "20", "--seed", "9", "--ids-out", str(out),
                "--tenant", f"seed-{out.stem}")
    assert a.read_text() != "" and a.read_text().split()[0::2] == b.read_text().split()[0::2]


def test_bench_scenarios_smoke(clew_bin, tmp_path):
    out = tmp_path / "bench"
    run_clew(clew_bin, "bench", "ingest", "--spans", "20000", "--concurrency", "4", "--out", str(out))
    ingest = json.loads((out / "ingest.json").read_text())["result"]
    assert ingest["acknowledged_spans"] == 20000 and ingest["failed_spans"] == 0
    assert ingest["spans_per_sec"] > 0 and ingest["sink_spans_per_sec"] > 0 and ingest["ceiling_ratio"] > 0
    assert ingest["server_cpu_us_per_span"] > 0 and ingest["peak_rss_bytes"] > 0
    assert ingest["wal_bytes_per_span"] > 50, "every acknowledged span was in the write-ahead log"
    assert 0 < ingest["block_bytes_per_span"] < ingest["wal_bytes_per_span"], "blocks are smaller than the log"
    assert "durable ingest" in (out / "ingest.md").read_text()

    http_out = tmp_path / "bench-http"
    run_clew(clew_bin, "bench", "ingest", "--spans", "5000", "--protocol", "http/protobuf", "--out", str(http_out))
    over_http = json.loads((http_out / "ingest.json").read_text())["result"]
    assert over_http["acknowledged_spans"] == 5000 and over_http["sink_load"]["acknowledged_spans"] == 5000
    assert over_http["load"]["protocol"] == "http-protobuf"

    run_clew(clew_bin, "bench", "query", "--spans", "5000", "--runs", "20", "--out", str(out))
    timings = json.loads((out / "query.json").read_text())["result"]
    by_id = [t for t in timings if t["name"] == "trace by id"]
    assert [t["note"] for t in by_id] == ["as loaded: head, and blocks cut meanwhile", "from blocks, after a flush"]
    assert all(t["supported"] and t["runs"] == 20 and t["p50_ms"] > 0 for t in by_id)

    searches = {t["name"]: t for t in timings if t["name"] != "trace by id"}
    for name in ["trace by id + time range", "list services", "list operations", "search by service", "search by operation", "search by duration",
                 "search by time range", "search by one attribute", "search by all filters"]:
        assert searches[name]["supported"] and searches[name]["runs"] == 20, searches[name]
    assert searches["list services"]["note"].endswith("; 10 results"), searches["list services"]
    assert not searches["search by service"]["note"].endswith("; 0 results"), searches["search by service"]
    for name in ["search by a frequent attribute key", "search by a rare attribute key"]:
        assert searches[name]["supported"] and searches[name]["runs"] == 20, searches[name]
        assert not searches[name]["note"].endswith("; 0 results"), searches[name]

    run_clew(clew_bin, "bench", "freshness", "--runs", "5", "--out", str(out))
    freshness = json.loads((out / "freshness.json").read_text())["result"]
    assert [t["name"] for t in freshness] == ["acknowledged → trace by id", "acknowledged → search"]
    assert all(t["supported"] and t["runs"] == 5 for t in freshness)
