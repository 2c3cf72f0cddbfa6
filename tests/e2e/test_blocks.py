"""Blocks through the real server: spans cut from the head into Parquet blocks come back identical, after the
cut and after a SIGKILL and restart, and the write-ahead log segments they covered are gone."""

from __future__ import annotations

import time

from helpers import Metrics, assert_full_success, assert_same_spans, otlp_json_to_proto, rand_trace_id
from test_roundtrip_handbuilt import rich_request, send

# A cut as soon as anything is in the head; the cutter checks every second.
CUT_NOW = ["--block-cut-bytes", "1"]


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
