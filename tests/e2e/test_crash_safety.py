"""Crash safety: concurrent clients stream batches over OTLP/HTTP protobuf and gRPC (plain and
gzip); the server is SIGKILLed at a random point mid-stream and restarted on the same data
dir, several times (every other time it is also SIGKILLed once during start-up, while it
replays the log). Every acknowledged span (from every cycle so far) must come back
identical; a request that was in flight at the kill is all-or-nothing.

Set CLEW_E2E_SEED to replay a run's kill points and payloads.
"""

from __future__ import annotations

import gzip
import os
import random
import threading
import time

import grpc
import requests

from helpers import (
    EXPORT_METHOD,
    ExportRequest,
    ExportResponse,
    InstrumentationScope,
    Resource,
    ResourceSpans,
    ScopeSpans,
    Span,
    assert_same_spans,
    kvs,
    otlp_json_to_proto,
)

CYCLES = 6
THREADS = 4
SPANS_PER_REQUEST = 20
MAX_REQUESTS_PER_THREAD_PER_CYCLE = 60
CYCLE_DEADLINE_S = 25.0
MODES = ["http", "grpc", "http-gzip", "grpc-gzip"]


def make_batch(rng: random.Random, worker: int, cycle: int, n: int) -> tuple[bytes, ExportRequest]:
    tid = rng.randbytes(16)
    if not any(tid):
        tid = b"\x01" + tid[1:]
    root = rng.randbytes(7) + b"\x01"
    t0 = 1_700_000_000_000_000_000 + rng.randrange(10**15)
    spans = []
    for i in range(SPANS_PER_REQUEST):
        sid = root if i == 0 else rng.randbytes(7) + bytes([i + 2])
        spans.append(Span(
            trace_id=tid, span_id=sid, parent_span_id=b"" if i == 0 else root,
            name=f"w{worker}-c{cycle}-r{n}-s{i}", kind=(i % 5) + 1,
            start_time_unix_nano=t0 + i * 1000, end_time_unix_nano=t0 + i * 1000 + rng.randrange(1, 10**9),
            attributes=kvs({"worker": worker, "cycle": cycle, "req": n, "i": i,
                            "payload": rng.randbytes(rng.randrange(0, 64)).hex(), "f": rng.random(),
                            "ok": bool(i % 2)}),
            events=[Span.Event(time_unix_nano=t0 + i * 1000 + 1, name="e", attributes=kvs({"n": i}))],
        ))
    req = ExportRequest(resource_spans=[ResourceSpans(
        resource=Resource(attributes=kvs({"service.name": f"crash-{worker}"})),
        scope_spans=[ScopeSpans(scope=InstrumentationScope(name="crash-test", version="1"), spans=spans)],
    )])
    return tid, req


class Cycle:
    def __init__(self, srv, cycle: int, seed: int):
        self.srv = srv
        self.cycle = cycle
        self.seed = seed
        self.lock = threading.Lock()
        self.acked: dict[bytes, ExportRequest] = {}
        self.attempted: dict[bytes, ExportRequest] = {}
        self.unexpected: list[str] = []
        self.killing = threading.Event()

    def worker(self, idx: int) -> None:
        rng = random.Random(f"{self.seed}-{self.cycle}-{idx}")
        mode = MODES[idx % len(MODES)]
        gz = mode.endswith("gzip")
        session = requests.Session()
        channel = grpc.insecure_channel(self.srv.grpc_target) if mode.startswith("grpc") else None
        url = self.srv.traces_url
        try:
            for n in range(MAX_REQUESTS_PER_THREAD_PER_CYCLE):
                if self.killing.is_set():
                    return
                tid, req = make_batch(rng, idx, self.cycle, n)
                with self.lock:
                    self.attempted[tid] = req
                try:
                    if channel is not None:
                        call = channel.unary_unary(EXPORT_METHOD, request_serializer=ExportRequest.SerializeToString,
                                                   response_deserializer=ExportResponse.FromString)
                        resp = call(req, timeout=10, compression=grpc.Compression.Gzip if gz else None)
                    else:
                        body = req.SerializeToString()
                        headers = {"Content-Type": "application/x-protobuf"}
                        if gz:
                            body = gzip.compress(body)
                            headers["Content-Encoding"] = "gzip"
                        r = session.post(url, data=body, headers=headers, timeout=(2, 10))
                        if r.status_code != 200:
                            if r.status_code not in (429, 503) and not self.killing.is_set():
                                with self.lock:
                                    self.unexpected.append(f"{mode}: HTTP {r.status_code}: {r.content[:200]!r}")
                            continue
                        resp = ExportResponse.FromString(r.content)
                except grpc.RpcError as e:
                    if self.killing.is_set() or e.code() == grpc.StatusCode.UNAVAILABLE:
                        if self.killing.is_set():
                            return
                        continue  # overload: retryable, not acknowledged
                    with self.lock:
                        self.unexpected.append(f"{mode}: gRPC {e.code()}: {e.details()}")
                    continue
                except requests.RequestException as e:
                    if not self.killing.is_set():
                        with self.lock:
                            self.unexpected.append(f"{mode}: {type(e).__name__}: {e}")
                    return
                if resp.HasField("partial_success") and resp.partial_success.rejected_spans:
                    with self.lock:
                        self.unexpected.append(f"{mode}: partial success {resp.partial_success}")
                    continue
                with self.lock:
                    self.acked[tid] = req
                # Read-your-writes under concurrency: an acknowledged trace is readable at once.
                if n % 4 == 0:
                    try:
                        g = session.get(f"{self.srv.query_url}/api/v1/traces/{tid.hex()}", timeout=(2, 10))
                    except requests.RequestException as e:
                        if not self.killing.is_set():
                            with self.lock:
                                self.unexpected.append(f"{mode}: GET after ack: {type(e).__name__}: {e}")
                        return
                    if g.status_code != 200 and not self.killing.is_set():
                        with self.lock:
                            self.unexpected.append(f"{mode}: acknowledged trace {tid.hex()} not readable: "
                                                   f"HTTP {g.status_code}")
        finally:
            session.close()
            if channel is not None:
                channel.close()


def verify(srv, acked: dict, maybe: dict, context: str) -> int:
    """Acknowledged traces: present and identical. In-flight ones: absent or complete.
    Returns how many in-flight ones are present."""
    present = 0
    for tid, req in acked.items():
        r = srv.get_trace(tid)
        assert r.status_code == 200, f"{context}: acknowledged trace {tid.hex()} lost (HTTP {r.status_code})"
        try:
            assert_same_spans(otlp_json_to_proto(r.json()), req)
        except AssertionError as e:
            raise AssertionError(f"{context}: acknowledged trace {tid.hex()} differs: {e}") from e
    for tid, req in maybe.items():
        r = srv.get_trace(tid)
        if r.status_code == 404:
            continue
        present += 1
        assert r.status_code == 200, f"{context}: GET in-flight trace {tid.hex()}: HTTP {r.status_code}"
        try:
            assert_same_spans(otlp_json_to_proto(r.json()), req)
        except AssertionError as e:
            raise AssertionError(f"{context}: in-flight trace {tid.hex()} is partially stored: {e}") from e
    return present


def test_sigkill_mid_stream_loses_no_acknowledged_span(server_factory):
    seed = int(os.environ.get("CLEW_E2E_SEED") or time.time_ns() % 2**31)
    rng = random.Random(seed)
    print(f"crash test seed: {seed} (set CLEW_E2E_SEED={seed} to replay)")
    srv = server_factory("crash")
    acked: dict[bytes, ExportRequest] = {}
    in_flight: dict[bytes, ExportRequest] = {}
    for cycle in range(CYCLES):
        c = Cycle(srv, cycle, seed)
        target = rng.randint(5, THREADS * MAX_REQUESTS_PER_THREAD_PER_CYCLE * 2 // 3)
        threads = [threading.Thread(target=c.worker, args=(i,), daemon=True) for i in range(THREADS)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + CYCLE_DEADLINE_S
        while time.monotonic() < deadline and any(t.is_alive() for t in threads):
            with c.lock:
                if len(c.acked) >= target:
                    break
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.01))
        streaming = sum(t.is_alive() for t in threads)
        c.killing.set()
        srv.kill()
        for t in threads:
            t.join(timeout=30)
            assert not t.is_alive(), "client thread did not stop"
        context = f"seed {seed}, cycle {cycle}, kill after {len(c.acked)} acks (target {target})"
        assert not c.unexpected, f"{context}: unexpected responses before the kill: {c.unexpected[:5]}"
        assert c.acked, f"{context}: nothing was acknowledged"
        assert streaming > 0, f"{context}: the clients had already finished: the kill was not mid-stream"
        acked.update(c.acked)
        for tid, req in c.attempted.items():
            if tid not in c.acked:
                in_flight[tid] = req
        if cycle % 2 == 1:
            # Also crash during start-up / log replay, before the server is ready.
            srv.spawn()
            time.sleep(rng.uniform(0, 0.03))
            srv.kill()
        srv.start()
        present = verify(srv, acked, in_flight, context)
        print(f"{context}: {len(acked)} acknowledged traces verified; "
              f"{present} of {len(in_flight)} unacknowledged ones were stored (complete)")
    # The server keeps working after all that.
    tid, req = make_batch(rng, 99, 99, 0)
    r = srv.post_traces(req.SerializeToString())
    assert r.status_code == 200
    assert_same_spans(srv.fetch_trace(tid), req)
