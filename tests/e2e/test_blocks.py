"""Blocks through the real server: spans cut from the head into Parquet blocks come back identical, after the
cut and after a SIGKILL and restart, and the write-ahead log segments they covered are gone."""

from __future__ import annotations

import time

from helpers import Metrics, assert_full_success, assert_same_spans, otlp_json_to_proto, rand_trace_id
from test_roundtrip_handbuilt import rich_request, send

# A cut as soon as anything is in the head; the cutter checks every tenth of a second.
CUT_NOW = ["--block-cut-bytes", "1"]
T0_PQ = 1_700_000_000_000_000_000


def wait_for_cut(server, timeout=30.0):
    """Until the head is empty and a block exists."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        metrics = Metrics(server.metrics_text())
        blocks = list((server.data_dir / "blocks").rglob("meta.json"))
        if metrics.sum("clew_head_spans") == 0 and blocks:
            return blocks
        time.sleep(0.1)
    raise AssertionError(f"no cut within {timeout}s\n{server.log_tail()}")


def read(server, tid):
    r = server.get_trace(tid)
    assert r.status_code == 200, f"GET trace: HTTP {r.status_code} {r.text[:300]}"
    return otlp_json_to_proto(r.json())


def test_every_value_survives_a_block_and_a_restart(server_factory):
    server = server_factory("blocks", extra_args=CUT_NOW)
    requests = {}
    for variant in ["http-protobuf", "http-json", "grpc"]:
        tid = rand_trace_id()
        requests[tid] = rich_request(tid)
        assert_full_success(send(server, requests[tid], variant), variant)
    wait_for_cut(server)
    assert not list((server.data_dir / "wal").glob("*.wal")), "segments covered by blocks are deleted"
    for tid, req in requests.items():
        assert_same_spans(read(server, tid), req)

    server.kill()
    server.start()
    for tid, req in requests.items():
        assert_same_spans(read(server, tid), req)


def test_a_trace_split_between_blocks_and_head_comes_back_whole(server_factory):
    server = server_factory("split", extra_args=CUT_NOW)
    tid = rand_trace_id()
    req = rich_request(tid)
    first, second = type(req)(), type(req)()
    first.resource_spans.extend(req.resource_spans[:1])
    second.resource_spans.extend(req.resource_spans[1:])
    assert len(second.resource_spans) > 0
    assert_full_success(send(server, first, "grpc"), "first half")
    wait_for_cut(server)
    assert_full_success(send(server, second, "grpc"), "second half")
    # The second half is in the head (or already in a second block): either way, the trace is whole.
    assert_same_spans(read(server, tid), req)


def test_flush_endpoint_cuts_the_head_now(server):
    requests = {tid: rich_request(tid) for tid in (rand_trace_id() for _ in range(3))}
    for req in requests.values():
        assert_full_success(send(server, req, "grpc"), "export")
    r = server._session.post(f"{server.query_url}/api/v1/flush", timeout=30)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["blocks"] == 1 and report["spans"] > 0, report
    assert Metrics(server.metrics_text()).sum("clew_head_spans") == 0
    assert list((server.data_dir / "blocks").rglob("meta.json"))
    for tid, req in requests.items():
        assert_same_spans(read(server, tid), req)
    again = server._session.post(f"{server.query_url}/api/v1/flush", timeout=30).json()
    assert again["blocks"] == 0, "nothing left to flush"


def test_blocks_command_lists_what_was_cut(server, clew_bin):
    import subprocess

    for _ in range(2):
        req = rich_request(rand_trace_id())
        assert_full_success(send(server, req, "grpc"), "export")
        server._session.post(f"{server.query_url}/api/v1/flush", timeout=30).raise_for_status()
    listed = server._session.get(f"{server.query_url}/api/v1/blocks", timeout=10).json()["blocks"]
    assert len(listed) == 2 and all(b["spans"] > 0 and b["bytes"] > 0 for b in listed), listed
    out = subprocess.run([clew_bin, "blocks", "--server", server.query_url], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    for block in listed:
        assert block["blockId"] in out.stdout
    spans = sum(b["spans"] for b in listed)
    assert out.stdout.strip().splitlines()[-1].startswith(f"2 blocks, 2 traces, {spans} spans"), out.stdout


def test_trace_by_id_time_window_skips_blocks_outside_it(server):
    tid = rand_trace_id()
    req = rich_request(tid)
    assert_full_success(send(server, req, "grpc"), "export")
    server._session.post(f"{server.query_url}/api/v1/flush", timeout=30).raise_for_status()
    starts = [s.start_time_unix_nano for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans]
    first_s = min(starts) // 1_000_000_000
    url = f"{server.query_url}/api/v1/traces/{tid.hex()}"
    inside = server._session.get(url, params={"start": first_s - 60, "end": "2200-01-01T00:00:00Z"}, timeout=10)
    assert inside.status_code == 200, inside.text
    assert_same_spans(otlp_json_to_proto(inside.json()), req)
    # A window long before the trace reads no block, and the head is empty after the flush.
    before = server._session.get(url, params={"start": 1, "end": 2}, timeout=10)
    assert before.status_code == 404, before.text
    for bad in ({"start": "yesterday"}, {"start": 10, "end": 5}):
        r = server._session.get(url, params=bad, timeout=10)
        assert r.status_code == 400 and r.json()["error"]["message"], (bad, r.text)


def test_blocks_are_plain_parquet_for_other_readers(server):
    """An outside reader (pyarrow) reads the three files of a block, finds the spans it was sent, and rebuilds each
    span's attributes from attrs.parquet the way the layout documents: per row group, entries sorted by key, each
    key's run as long as meta.json counts, `row_delta` summed along the run giving the span's row."""
    import json

    import pyarrow.parquet as pq

    from helpers import AnyValue, ExportRequest, KeyValue, ResourceSpans, ScopeSpans, Span

    sent = {}
    req = ExportRequest()
    rs = ResourceSpans()
    rs.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value="pq")))
    scope = ScopeSpans()
    tid = rand_trace_id()
    for i in range(300):
        attrs = {f"k{(i * 7 + j) % 13}": f"v{(i + j) % 5}" for j in range(i % 4)}
        attrs["n"] = i
        span = Span(trace_id=tid if i < 10 else rand_trace_id(), span_id=(i + 1).to_bytes(8, "big"), name=f"op{i % 3}",
                    start_time_unix_nano=T0_PQ + i * 1_000_000, end_time_unix_nano=T0_PQ + i * 1_000_000 + 5)
        for k, v in attrs.items():
            value = AnyValue(int_value=v) if isinstance(v, int) else AnyValue(string_value=v)
            span.attributes.append(KeyValue(key=k, value=value))
        scope.spans.append(span)
        sent[span.span_id] = attrs
    rs.scope_spans.append(scope)
    req.resource_spans.append(rs)
    assert_full_success(send(server, req, "grpc"), "export")
    server._session.post(f"{server.query_url}/api/v1/flush", timeout=30).raise_for_status()

    [meta_path] = list((server.data_dir / "blocks").rglob("meta.json"))
    meta = json.loads(meta_path.read_text())
    block = meta_path.parent
    spans = pq.read_table(block / "spans.parquet")
    traces = pq.read_table(block / "traces.parquet")
    assert spans.num_rows == meta["span_count"] == 300
    assert traces.num_rows == meta["trace_count"] == 291
    assert sum(traces.column("span_count").to_pylist()) == 300
    span_ids = spans.column("span_id").to_pylist()

    got = {sid: {} for sid in span_ids}
    dedicated = {c["column"]: c["key"] for c in meta["dedicated"]["span"]}
    for column, key in dedicated.items():
        for sid, value in zip(span_ids, spans.column(column).to_pylist()):
            if value is not None:
                got[sid][key] = value
    attrs_file = pq.ParquetFile(block / "attrs.parquet")
    for group in meta["row_groups"]:
        if group.get("attrs_row_group") is None:
            continue
        entries = attrs_file.read_row_group(group["attrs_row_group"]).to_pylist()
        at = 0
        for key, count in zip(meta["attr_keys"], group.get("attr_entries", [])):
            row = 0
            for entry in entries[at:at + count]:
                assert entry["key"] == key
                row += entry["row_delta"]
                assert group["first_row"] <= row < group["first_row"] + group["rows"]
                got[span_ids[row]][key] = entry["str"] if entry["str"] is not None else entry["int"]
            at += count
        assert at == len(entries)
    assert got == sent
