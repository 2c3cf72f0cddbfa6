"""Tail sampling end to end: a real `clew serve` with policies from a TOML file, traces over OTLP/HTTP, the
kept set read back from the query API, across late spans, SIGKILL restarts and block cuts; and the sampling
API on the sampling port.

The policies are errors (status ERROR), slow (latency >= 500 ms) and a probabilistic share using the
collector's hash (FNV-1a over salt and trace id), which this file recomputes, so every test knows the exact
set of traces Clew must keep.
"""

from __future__ import annotations

import time
from fractions import Fraction
from pathlib import Path

import requests

from helpers import Metrics, Span, Status, assert_full_success, rand_trace_id, request_of, simple_span

SERVICE = "sampling-e2e"
SALT = "e2e-salt"
SLOW_MS = 500


# --------------------------------------------------------------------------------------
# Configuration and the expected decisions
# --------------------------------------------------------------------------------------


def write_config(path: Path, decision_wait: str = "1s", percentage: float = 10, extra: str = "") -> Path:
    path.write_text(f"""
[tail_sampling]
enabled = true
decision_wait = "{decision_wait}"
# Longer than the window: every decision in these tests comes from decision_wait.
root_settle_time = "60s"

[[tail_sampling.policies]]
name = "errors"
type = "status_code"
status_code = {{ status_codes = ["ERROR"] }}

[[tail_sampling.policies]]
name = "slow"
type = "latency"
latency = {{ threshold_ms = {SLOW_MS} }}

[[tail_sampling.policies]]
name = "share"
type = "probabilistic"
probabilistic = {{ sampling_percentage = {percentage}, hash_salt = "{SALT}" }}
{extra}
""")
    return path


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def hash_kept(trace_id: bytes, percentage: float) -> bool:
    """The collector's probabilistic policy: hash(salt + id) <= ratio * (2^64 - 1)."""
    threshold = int(Fraction(percentage / 100) * (2**64 - 1))
    return fnv1a64(SALT.encode() + trace_id) <= threshold


def now_ns() -> int:
    return time.time_ns()


def trace_spans(trace_id: bytes, kind: str, start: int) -> list[Span]:
    """A root and two children; `error` sets ERROR on a child, `slow` makes the root last 2 s."""
    root_ms = 2000 if kind == "slow" else 20
    root = simple_span(trace_id, name="GET /checkout", start=start, duration=root_ms * 1_000_000)
    children = [
        simple_span(trace_id, name=f"child-{i}", parent=root.span_id, start=start + 1_000_000, duration=5_000_000)
        for i in range(2)
    ]
    if kind == "error":
        children[1].status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message="boom"))
    return [root, *children]


class Traffic:
    """Traces sent, with what Clew must decide about each."""

    def __init__(self, percentage: float):
        self.percentage = percentage
        self.kinds: dict[bytes, str] = {}

    def make(self, plain: int, errors: int, slow: int) -> list[tuple[bytes, list[Span]]]:
        out = []
        start = now_ns() - 5_000_000_000
        for kind, n in (("plain", plain), ("error", errors), ("slow", slow)):
            for _ in range(n):
                tid = rand_trace_id()
                self.kinds[tid] = kind
                out.append((tid, trace_spans(tid, kind, start)))
        return out

    def expected_policy(self, tid: bytes) -> str | None:
        kind = self.kinds[tid]
        if kind == "error":
            return "errors"
        if kind == "slow":
            return "slow"
        return "share" if hash_kept(tid, self.percentage) else None

    @property
    def kept(self) -> set[bytes]:
        return {t for t in self.kinds if self.expected_policy(t) is not None}

    @property
    def dropped(self) -> set[bytes]:
        return set(self.kinds) - self.kept


def send(server, traces, per_request: int = 25) -> None:
    for i in range(0, len(traces), per_request):
        spans = [s for _, spans in traces[i : i + per_request] for s in spans]
        assert_full_success(server.export_http_proto(request_of(spans, service=SERVICE)))


# --------------------------------------------------------------------------------------
# Reading decisions back
# --------------------------------------------------------------------------------------


def decided_count(server) -> float:
    return Metrics(server.metrics_text()).sum("clew_sampling_traces_total")


def wait_decided(server, n: int, timeout: float = 20) -> None:
    """Until at least n traces are decided since the start and none waits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = Metrics(server.metrics_text())
        if m.sum("clew_sampling_traces_total") >= n and m.sum("clew_sampling_traces_waiting") == 0:
            return
        time.sleep(0.1)
    raise AssertionError(f"{n} decisions not reached within {timeout}s:\n{server.metrics_text()[-3000:]}")


def visible(server, ids) -> set[bytes]:
    out = set()
    for tid in ids:
        r = server.get_trace(tid)
        assert r.status_code in (200, 404), f"GET trace {tid.hex()}: HTTP {r.status_code} {r.text[:200]}"
        if r.status_code == 200:
            out.add(tid)
    return out


def searched(server) -> set[bytes]:
    r = requests.get(f"{server.query_url}/api/v1/search", params={"service": SERVICE, "limit": 1000}, timeout=15)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["nextCursor"] is None, "more than one page of results"
    return {bytes.fromhex(t["traceId"]) for t in body["traces"]}


def assert_kept_set(server, traffic: Traffic) -> None:
    ids = set(traffic.kinds)
    got = visible(server, ids)
    missing, extra = traffic.kept - got, got - traffic.kept
    assert not missing and not extra, (
        f"kept set differs: {len(missing)} missing ({[traffic.kinds[t] for t in missing]}), "
        f"{len(extra)} not dropped ({[traffic.kinds[t] for t in extra]})"
    )
    assert searched(server) & ids == traffic.kept


def span_count(server, tid: bytes) -> int:
    data = server.fetch_trace(tid)
    return sum(len(ss.spans) for rs in data.resource_spans for ss in rs.scope_spans)


def decision(server, tid: bytes, tenant: str | None = None) -> requests.Response:
    headers = {"X-Scope-OrgID": tenant} if tenant else {}
    return requests.get(f"{server.sampling_url}/api/v1/sampling/traces/{tid.hex()}", headers=headers, timeout=10)


def sampling_server(server_factory, tmp_path, name="sampling", **config):
    path = write_config(tmp_path / f"{name}.toml", **config)
    return server_factory(name, extra_args=["--config", str(path)])


# --------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------


def test_errors_and_slow_traces_survive_a_one_percent_share(server_factory, tmp_path):
    server = sampling_server(server_factory, tmp_path, decision_wait="3s", percentage=1)
    traffic = Traffic(percentage=1)
    traces = traffic.make(plain=300, errors=20, slow=20)
    send(server, traces)
    # Acknowledged means stored: every trace is readable while it waits for its decision.
    assert decided_count(server) == 0
    some = [t for t, _ in traces[:: len(traces) // 10]]
    assert visible(server, some) == set(some)
    wait_decided(server, len(traces))
    assert_kept_set(server, traffic)
    assert {traffic.kinds[t] for t in traffic.kept} >= {"error", "slow"}
    m = Metrics(server.metrics_text())
    decided = m.by_label("clew_sampling_traces_total", "policy")
    assert decided.get("errors") == 20 and decided.get("slow") == 20, decided


def test_the_exact_kept_set_and_why(server_factory, tmp_path):
    server = sampling_server(server_factory, tmp_path, percentage=10)
    traffic = Traffic(percentage=10)
    traces = traffic.make(plain=400, errors=15, slow=15)
    send(server, traces)
    wait_decided(server, len(traces))
    assert_kept_set(server, traffic)
    share = [t for t in traffic.kept if traffic.kinds[t] == "plain"]
    assert 15 <= len(share) <= 70, f"10% of 400 plain traces kept {len(share)}"

    # Each decision and its reason, from the sampling API.
    for tid, kind in traffic.kinds.items():
        r = decision(server, tid)
        assert r.status_code == 200, r.text
        body = r.json()
        policy = traffic.expected_policy(tid)
        assert body["traceId"] == tid.hex()
        assert body["sampled"] == (policy is not None), (kind, body)
        assert body["policy"] == policy, (kind, body)
        assert body["weight"] == {"errors": 1, "slow": 1, "share": 10, None: 0}[policy], body
        assert body["threshold"] is None
    unknown = decision(server, rand_trace_id())
    assert unknown.status_code == 404 and "no sampling decision" in unknown.json()["error"]["message"]
    other_tenant = decision(server, traces[0][0], tenant="someone-else")
    assert other_tenant.status_code == 404
    bad = requests.get(f"{server.sampling_url}/api/v1/sampling/traces/not-hex", timeout=10)
    assert bad.status_code == 400 and bad.json()["error"]["message"]

    # The configuration in effect and the per-policy counts.
    r = requests.get(f"{server.sampling_url}/api/v1/sampling", timeout=10)
    assert r.status_code == 200, r.text
    tail = r.json()["tailSampling"]
    assert tail["enabled"] is True
    assert tail["config"]["decision_wait"] == "1000ms"
    assert [p["name"] for p in tail["config"]["policies"]] == ["errors", "slow", "share"]
    assert tail["config"]["policies"][2]["probabilistic"]["sampling_percentage"] == 10
    policies = {p["name"]: p for p in tail["policies"]}
    assert [p["type"] for p in tail["policies"]] == ["status_code", "latency", "probabilistic"]
    assert policies["errors"]["sampled"] == 15 and policies["errors"]["votes"]["sampled"] == 15
    assert policies["slow"]["sampled"] == 15 and policies["slow"]["votes"]["sampled"] == 15
    assert policies["share"]["sampled"] == len(share)
    # Every policy votes on every trace; the deciding one is the most certain (errors over the share).
    for p in tail["policies"]:
        assert sum(p["votes"].values()) == len(traces), p
    assert tail["noPolicy"]["notSampled"] == len(traffic.dropped)
    assert tail["waitingTraces"] == 0
    # Jaeger's endpoint is still served on the same port.
    jaeger = requests.get(f"{server.sampling_url}/sampling", params={"service": SERVICE}, timeout=10)
    assert jaeger.status_code == 200 and jaeger.json()["strategyType"] == "PROBABILISTIC"
    # The query port answers the same sampling API (the web UI reads it from there).
    for path in ["/api/v1/sampling", f"/api/v1/sampling/traces/{traces[0][0].hex()}"]:
        on_query = requests.get(f"{server.query_url}{path}", timeout=10)
        assert on_query.status_code == 200 and on_query.json() == requests.get(f"{server.sampling_url}{path}",
                                                                               timeout=10).json(), path


def test_late_spans_follow_the_decision(server_factory, tmp_path):
    server = sampling_server(server_factory, tmp_path, percentage=0)
    traffic = Traffic(percentage=0)
    traces = traffic.make(plain=10, errors=5, slow=0)
    send(server, traces)
    wait_decided(server, len(traces))
    assert_kept_set(server, traffic)

    # Late spans: an ERROR span for a dropped trace does not resurrect it; one for a kept trace joins it.
    start = now_ns() - 1_000_000_000
    dropped = sorted(traffic.dropped)
    kept = sorted(traffic.kept)
    late = []
    for tid in dropped:
        s = simple_span(tid, name="late", parent=b"\x01" * 8, start=start)
        s.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR))
        late.append(s)
    late += [simple_span(tid, name="late", parent=b"\x01" * 8, start=start) for tid in kept]
    assert_full_success(server.export_http_proto(request_of(late, service=SERVICE)))
    time.sleep(0.5)
    assert_kept_set(server, traffic)
    assert all(span_count(server, t) == 4 for t in kept)
    m = Metrics(server.metrics_text())
    late_spans = m.by_label("clew_sampling_late_spans_total", "decision")
    assert late_spans == {"sampled": len(kept), "not_sampled": len(dropped)}, late_spans
    assert decided_count(server) == len(traces), "late spans must not start new decisions"
    api = requests.get(f"{server.sampling_url}/api/v1/sampling", timeout=10).json()["tailSampling"]
    assert api["lateSpans"] == {"sampled": len(kept), "notSampled": len(dropped)}


def test_sigkill_keeps_dropped_traces_dropped(server_factory, tmp_path):
    server = sampling_server(server_factory, tmp_path, percentage=10)
    traffic = Traffic(percentage=10)
    traces = traffic.make(plain=150, errors=10, slow=10)
    send(server, traces)
    wait_decided(server, len(traces))
    assert_kept_set(server, traffic)
    time.sleep(0.3)  # the drop records reach the log (they are not acknowledged to anyone)
    server.kill()
    server.start()
    # The log replays the drops: dropped traces stay gone right away ...
    assert_kept_set(server, traffic)
    # ... and the kept traces, back in the head with their decisions, are not decided again.
    time.sleep(1.5)
    assert decided_count(server) == 0
    assert_kept_set(server, traffic)
    for tid in traffic.kept:
        assert decision(server, tid).json()["policy"] == traffic.expected_policy(tid)


def test_a_restart_during_the_decision_window_loses_no_decision(server_factory, tmp_path):
    server = sampling_server(server_factory, tmp_path, decision_wait="3s", percentage=10)
    traffic = Traffic(percentage=10)
    traces = traffic.make(plain=150, errors=10, slow=10)
    t0 = time.monotonic()
    send(server, traces)
    assert decided_count(server) == 0
    server.kill()
    assert time.monotonic() - t0 < 3, "the kill must come inside the decision window"
    server.start()
    # Everything acknowledged is back, waiting for its decision again.
    assert visible(server, set(traffic.kinds)) == set(traffic.kinds)
    wait_decided(server, len(traces))
    assert_kept_set(server, traffic)


def test_blocks_cut_after_decisions_hold_only_kept_traces(server_factory, tmp_path):
    server = sampling_server(server_factory, tmp_path, percentage=10)
    traffic = Traffic(percentage=10)
    traces = traffic.make(plain=200, errors=10, slow=10)
    send(server, traces)
    wait_decided(server, len(traces))
    r = requests.post(f"{server.query_url}/api/v1/flush", timeout=60)
    assert r.status_code == 200, r.text
    blocks = requests.get(f"{server.query_url}/api/v1/blocks", timeout=10).json()["blocks"]
    assert sum(b["traces"] for b in blocks) == len(traffic.kept)
    assert sum(b["spans"] for b in blocks) == 3 * len(traffic.kept)
    assert_kept_set(server, traffic)
    # And after a restart, from the blocks alone.
    server.kill()
    server.start()
    assert_kept_set(server, traffic)


def test_a_cut_during_the_decision_window_keeps_every_decision(server_factory, tmp_path):
    server = sampling_server(server_factory, tmp_path, decision_wait="4s", percentage=10)
    traffic = Traffic(percentage=10)
    decided_early = traffic.make(plain=60, errors=5, slow=5)
    send(server, decided_early)
    wait_decided(server, len(decided_early))
    waiting = traffic.make(plain=150, errors=10, slow=10)
    t0 = time.monotonic()
    send(server, waiting)
    # A cut while the second lot waits: only the decided traces go to a block, the waiting ones stay in the
    # head (and in the log), where their decisions can still drop them.
    r = requests.post(f"{server.query_url}/api/v1/flush", timeout=60)
    assert r.status_code == 200, r.text
    first = {t for t, _ in decided_early}
    blocks = requests.get(f"{server.query_url}/api/v1/blocks", timeout=10).json()["blocks"]
    assert sum(b["traces"] for b in blocks) == len(traffic.kept & first)
    # A crash inside the window: the log still has the waiting traces, and they are decided after the restart.
    server.kill()
    assert time.monotonic() - t0 < 4, "the kill must come inside the decision window"
    server.start()
    assert visible(server, {t for t, _ in waiting}) == {t for t, _ in waiting}
    wait_decided(server, len(waiting))
    assert_kept_set(server, traffic)
    r = requests.post(f"{server.query_url}/api/v1/flush", timeout=60)
    assert r.status_code == 200, r.text
    blocks = requests.get(f"{server.query_url}/api/v1/blocks", timeout=10).json()["blocks"]
    # Only kept traces went to blocks. The first lot's kept traces are in two: the log segments kept for the
    # waiting traces held them too, so the restart replayed them (as after any crash between a block write and
    # the log's cleanup; reads remove the duplicates).
    assert sum(b["traces"] for b in blocks) == len(traffic.kept) + len(traffic.kept & first)
    assert_kept_set(server, traffic)
    # Once nothing waits, a cut frees the log.
    server.kill()
    server.start()
    assert_kept_set(server, traffic)
    assert Metrics(server.metrics_text()).sum("clew_sampling_traces_waiting") == 0


def test_sampling_api_when_tail_sampling_is_off(server):
    r = requests.get(f"{server.sampling_url}/api/v1/sampling", timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["tailSampling"]["enabled"] is False
    assert body["tailSampling"]["config"]["policies"] == []
    assert "policies" not in body["tailSampling"]
    assert body["remoteSampling"]["adaptive"] is False
    r = decision(server, rand_trace_id())
    assert r.status_code == 404 and "tail sampling is off" in r.json()["error"]["message"]


def test_an_invalid_policy_stops_the_start_with_its_name(server_factory, tmp_path):
    path = write_config(tmp_path / "bad.toml", extra="""
[[tail_sampling.policies]]
name = "broken-regex"
type = "string_attribute"
string_attribute = { key = "http.route", values = ["(unclosed"], enabled_regex_matching = true }
""")
    server = server_factory("bad", extra_args=["--config", str(path)], start=False)
    server.spawn()
    rc = server.proc.wait(timeout=20)
    server.expected_dead = True
    assert rc != 0
    log = server.log_path.read_text()
    assert "broken-regex" in log and "regex" in log, log[-2000:]
