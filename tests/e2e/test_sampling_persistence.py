"""Why tail sampling kept a trace is stored with it: a real `clew serve` with policies from a TOML file, and the
decision (policy, weight, threshold) read back from the sampling API after a SIGKILL and restart (write-ahead
log), after `POST /api/v1/flush` (the block's traces.parquet) and after a restart following the flush (blocks
alone). A consistent probabilistic keep writes its `th` into every stored span's tracestate, next to an
incoming `rv`, and through every API that shows tracestates (native OTLP JSON, Jaeger, Tempo).

Trace ids are built so the consistent policy's randomness (the id's low 56 bits, or `ot=rv`) is known: a first
byte of 0xf0 is above the 10% threshold 0xe6666666666666 (kept), 0x10 below it (dropped).
"""

from __future__ import annotations

import os
import time

import pytest
import requests

from helpers import Metrics, Status, assert_full_success, request_of, simple_span

SERVICE = "sampling-persistence"
TH = "e6666666666666"  # 10% at 14 hex digits of precision
RV_HIGH = "f1234567890abc"
RV_LOW = "01234567890abc"


def config(cache: int) -> str:
    return f"""
[tail_sampling]
enabled = true
decision_wait = "1s"
root_settle_time = "60s"
decision_cache = {{ sampled_cache_size = {cache}, non_sampled_cache_size = {cache} }}

[[tail_sampling.policies]]
name = "errors"
type = "status_code"
status_code = {{ status_codes = ["ERROR"] }}

[[tail_sampling.policies]]
name = "tenth"
type = "probabilistic"
probabilistic = {{ sampling_percentage = 10, mode = "consistent" }}
"""


def trace_id(randomness_top: int) -> bytes:
    """A random id whose 56-bit randomness (bytes 9..15) starts with the given byte."""
    return os.urandom(9) + bytes([randomness_top]) + os.urandom(6)


class Case:
    def __init__(self, name: str, tid: bytes, trace_state: str = "", error: bool = False,
                 policy: str | None = None, weight: float = 0, threshold: str | None = None, stored_state: str = ""):
        self.name, self.tid, self.trace_state, self.error = name, tid, trace_state, error
        self.policy, self.weight, self.threshold, self.stored_state = policy, weight, threshold, stored_state

    @property
    def kept(self) -> bool:
        return self.policy is not None

    def spans(self, start: int, names=("root", "child-1", "child-2")):
        root = simple_span(self.tid, name=names[0], start=start, duration=20_000_000)
        spans = [root] + [simple_span(self.tid, name=n, parent=root.span_id, start=start + 1_000_000)
                          for n in names[1:]]
        for s in spans:
            s.trace_state = self.trace_state
        if self.error:
            spans[-1].status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message="boom"))
        return spans


def cases() -> list[Case]:
    return [
        Case("error", trace_id(0x10), error=True, policy="errors", weight=1),
        Case("lucky", trace_id(0xF0), policy="tenth", weight=10, threshold=TH, stored_state=f"ot=th:{TH}"),
        # The incoming rv decides (not the unlucky id), and stays next to the th Clew writes.
        Case("rv-high", trace_id(0x10), trace_state=f"vendor=v,ot=rv:{RV_HIGH}", policy="tenth", weight=10,
             threshold=TH, stored_state=f"ot=th:{TH};rv:{RV_HIGH},vendor=v"),
        Case("rv-low", trace_id(0xF0), trace_state=f"ot=rv:{RV_LOW}"),
        Case("unlucky", trace_id(0x10)),
    ]


def start_server(server_factory, tmp_path, cache: int):
    path = tmp_path / f"persistence-{cache}.toml"
    path.write_text(config(cache))
    return server_factory(f"persist-{cache}", extra_args=["--config", str(path)])


def metric(server, name: str) -> float:
    return Metrics(server.metrics_text()).sum(name)


def wait_decided(server, n: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if metric(server, "clew_sampling_traces_total") >= n and metric(server, "clew_sampling_traces_waiting") == 0:
            return
        time.sleep(0.1)
    raise AssertionError(f"{n} decisions not reached within {timeout}s")


def decision(server, tid: bytes) -> requests.Response:
    return requests.get(f"{server.sampling_url}/api/v1/sampling/traces/{tid.hex()}", timeout=10)


def assert_decisions(server, all_cases: list[Case], source: str | None = None, forgotten_drops: bool = False):
    """Kept traces report their policy, weight and threshold; `source`, when given, is where the answer came from.
    `forgotten_drops`: after a restart, dropped traces have no decision left (they are gone)."""
    for c in all_cases:
        r = decision(server, c.tid)
        if not c.kept and forgotten_drops:
            assert r.status_code == 404, (c.name, r.text)
            continue
        assert r.status_code == 200, (c.name, r.text)
        body = r.json()
        assert body["sampled"] is c.kept, (c.name, body)
        assert body["policy"] == c.policy, (c.name, body)
        assert body["weight"] == pytest.approx(c.weight, rel=1e-9), (c.name, body)
        assert body["threshold"] == c.threshold, (c.name, body)
        if source is not None and c.kept:
            assert body["source"] == source, (c.name, body)


def native_states(server, tid: bytes) -> dict[str, str]:
    r = server.get_trace(tid)
    assert r.status_code == 200, r.text
    return {s["name"]: s.get("traceState", "")
            for rs in r.json()["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]}


def jaeger_states(server, tid: bytes) -> dict[str, str]:
    r = requests.get(f"{server.query_url}/api/traces/{tid.hex()}", timeout=10)
    assert r.status_code == 200, r.text
    spans = r.json()["data"][0]["spans"]
    return {s["operationName"]: next((t["value"] for t in s["tags"] if t["key"] == "w3c.tracestate"), "")
            for s in spans}


def tempo_states(server, tid: bytes) -> dict[str, str]:
    r = requests.get(f"{server.tempo_url}/api/v2/traces/{tid.hex()}", timeout=10)
    assert r.status_code == 200, r.text
    rss = r.json()["trace"]["resourceSpans"]
    return {s["name"]: s.get("traceState", "") for rs in rss for ss in rs["scopeSpans"] for s in ss["spans"]}


def assert_stored_spans(server, all_cases: list[Case], readers=(native_states,), names=("root", "child-1", "child-2")):
    for c in all_cases:
        if not c.kept:
            assert server.get_trace(c.tid).status_code == 404, c.name
            continue
        for read in readers:
            assert read(server, c.tid) == {n: c.stored_state for n in names}, (c.name, read.__name__)


def flush(server) -> dict:
    r = requests.post(f"{server.query_url}/api/v1/flush", timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("cache", [100_000, 0], ids=["cached", "uncached"])
def test_a_kept_traces_decision_survives_sigkill_flush_and_restart(server_factory, tmp_path, cache):
    """With the decision caches off (`uncached`), every answer comes from storage: the head, then blocks."""
    server = start_server(server_factory, tmp_path, cache)
    all_cases = cases()
    start = time.time_ns() - 2_000_000_000
    spans = [s for c in all_cases for s in c.spans(start)]
    assert_full_success(server.export_http_proto(request_of(spans, service=SERVICE)))
    wait_decided(server, len(all_cases))
    assert_decisions(server, all_cases, source="sampler" if cache else "stored",
                     forgotten_drops=not cache)
    assert_stored_spans(server, all_cases)

    # (a) SIGKILL and restart: the write-ahead log gives the decisions back with the spans; nothing is decided
    # again, and the dropped traces stay dropped.
    time.sleep(0.3)  # the keep and drop records reach the log (they are not acknowledged to anyone)
    server.kill()
    server.start()
    assert metric(server, "clew_sampling_traces_total") == 0
    assert_decisions(server, all_cases, source=None if cache else "stored", forgotten_drops=True)
    assert_stored_spans(server, all_cases)
    time.sleep(1.5)
    assert metric(server, "clew_sampling_traces_total") == 0, "restored decisions are not made again"

    # (b) A block: traces.parquet holds the decisions, spans.parquet the thresholds.
    assert flush(server)["blocks"] == 1
    blocks = requests.get(f"{server.query_url}/api/v1/blocks", timeout=10).json()["blocks"]
    assert sum(b["traces"] for b in blocks) == sum(c.kept for c in all_cases)
    assert_decisions(server, all_cases, source=None if cache else "stored", forgotten_drops=True)
    assert_stored_spans(server, all_cases, readers=(native_states, jaeger_states, tempo_states))

    # (c) Restart after the flush: the log is gone, the blocks alone answer.
    server.kill()
    server.start()
    assert_decisions(server, all_cases, source="stored", forgotten_drops=True)
    assert_stored_spans(server, all_cases, readers=(native_states, jaeger_states, tempo_states))


def test_late_spans_of_a_probabilistic_keep_get_its_threshold(server_factory, tmp_path):
    server = start_server(server_factory, tmp_path, 100_000)
    all_cases = [c for c in cases() if c.name in ("lucky", "rv-high")]
    start = time.time_ns() - 2_000_000_000
    assert_full_success(server.export_http_proto(
        request_of([s for c in all_cases for s in c.spans(start)], service=SERVICE)))
    wait_decided(server, len(all_cases))
    assert flush(server)["blocks"] == 1
    # Late spans after the trace went to a block: they reach a second block with the same threshold.
    late = [s for c in all_cases for s in c.spans(start, names=("late-root", "late"))[1:]]
    for s in late:
        s.parent_span_id = b"\x01" * 8
    assert_full_success(server.export_http_proto(request_of(late, service=SERVICE)))
    names = ("root", "child-1", "child-2", "late")
    assert_stored_spans(server, all_cases, names=names)
    assert flush(server)["blocks"] == 1
    assert len(requests.get(f"{server.query_url}/api/v1/blocks", timeout=10).json()["blocks"]) == 2
    assert_stored_spans(server, all_cases, readers=(native_states, jaeger_states, tempo_states), names=names)
    assert_decisions(server, all_cases)
