"""A crash at every step of a block cut, a compaction and retention, on a local folder and on S3 (moto's server).

`CLEW_CRASH_AT=<point>` makes `clew serve` abort (SIGABRT) the moment it reaches that step. Each test drives the
server to the step and checks it died there, then restarts it without the variable twice:
- quiet (no cut, compaction or retention running): no block object is left without its `meta.json`, the blocks
  `clew blocks` lists are exactly those in storage, every trace comes back by id with each span exactly once, and
  search counts each span once (span count and matched spans of every summary);
- active (cuts, compaction and retention every second): once it settles, the same holds, the blocks hold each span
  exactly once, the write-ahead log is empty and expired traces are gone.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
import uuid

import pytest
import requests

from helpers import Metrics, assert_full_success, assert_same_spans, otlp_json_to_proto, rand_span_id, rand_trace_id
from helpers import request_of, simple_span
from test_s3 import S3, s3  # noqa: F401  (the moto server fixture)

CUT_POINTS = ["cut:after_wal_roll", "cut:after_block_data", "cut:after_block_meta", "cut:after_wal_deleted"]
COMPACT_POINTS = ["compact:after_output_data", "compact:after_output_meta", "compact:after_input_meta_deleted",
                  "compact:after_input_deleted"]
RETENTION_POINTS = ["retention:after_meta_deleted", "retention:after_block_deleted"]
PREFIX = "crash/prefix"
DEFAULT_TENANT = "single-tenant"
OLD_TENANTS = ["old-a", "old-b"]
HOUR_NS = 3600 * 10**9
# Nothing happens in the background: no cut (the head stays far below its limits) and no compaction or retention.
QUIET = ["--compaction-interval-secs", "3600"]
# Everything as soon as possible.
ACTIVE = ["--block-cut-bytes", "1", "--compaction-interval-secs", "1"]


class Storage:
    """Where the server under test keeps its blocks: the local default folder, or a fresh bucket under a prefix."""

    def __init__(self, kind: str, s3: S3 | None):
        self.kind = kind
        self.s3 = s3
        self.bucket = s3.new_bucket() if s3 else None

    def args(self) -> list[str]:
        return ["--storage", f"s3://{self.bucket}/{PREFIX}"] if self.s3 else []

    def env(self) -> dict:
        return self.s3.env() if self.s3 else {}

    def keys(self, server) -> list[str]:
        """Every object, relative to the storage root (`<tenant>/blocks/<id>/<file>`)."""
        if self.s3:
            keys = self.s3.keys(self.bucket)
            outside = [k for k in keys if not k.startswith(PREFIX + "/")]
            assert not outside, f"objects outside the prefix: {outside}"
            return [k[len(PREFIX) + 1:] for k in keys]
        root = server.data_dir / "blocks"
        return [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()] if root.exists() else []

    def blocks(self, server) -> tuple[dict[str, set[str]], dict[str, list[str]]]:
        """(tenant -> ids of its blocks that have a `meta.json`, `tenant/block` -> files of those that have not)."""
        files: dict[tuple[str, str], set[str]] = {}
        for key in self.keys(server):
            parts = key.split("/")
            assert len(parts) == 4 and parts[1] == "blocks", f"unexpected object {key}"
            files.setdefault((parts[0], parts[2]), set()).add(parts[3])
        complete: dict[str, set[str]] = {}
        stray = {}
        for (tenant, block), names in files.items():
            if "meta.json" not in names:
                stray[f"{tenant}/{block}"] = sorted(names)
                continue
            assert {"spans.parquet", "traces.parquet"} <= names, f"block {tenant}/{block} lacks data files: {names}"
            complete.setdefault(tenant, set()).add(block)
        return complete, stray

    def complete_blocks(self, server) -> dict[str, set[str]]:
        """Tenant -> ids of its blocks; fails on any object that is not in a block with a `meta.json`."""
        complete, stray = self.blocks(server)
        assert not stray, f"objects of blocks without meta.json: {stray}"
        return complete


@pytest.fixture(params=["local", "s3"])
def storage(request):
    if request.param == "s3":
        return Storage("s3", request.getfixturevalue("s3"))
    return Storage("local", None)


class Data:
    """The traces a test sends, per tenant: trace id -> its spans (each sent once), and the service of them all."""

    def __init__(self):
        self.service = f"crash-{uuid.uuid4().hex[:8]}"
        self.traces: dict[str, dict[bytes, list]] = {}
        self.expired: set[str] = set()

    def new_traces(self, tenant: str, n: int, end_ns: int) -> list[bytes]:
        """`n` new traces of three spans (a root and two children) ending at `end_ns`: their ids."""
        made = []
        for _ in range(n):
            tid, root = rand_trace_id(), rand_span_id()
            spans = [simple_span(tid, root, name="root", start=end_ns - 5_000_000, duration=5_000_000,
                                 attrs={"step": "root"})]
            spans += [simple_span(tid, rand_span_id(), name=f"child-{i}", parent=root, start=end_ns - 4_000_000 + i,
                                  duration=1_000_000 - i, attrs={"child": i}) for i in range(2)]
            self.traces.setdefault(tenant, {})[tid] = spans
            made.append(tid)
        return made

    def send(self, server, tenant: str, spans: list) -> None:
        resp = server.export_http_proto(request_of(spans, service=self.service),
                                        tenant=None if tenant == DEFAULT_TENANT else tenant)
        assert_full_success(resp)

    def span_count(self, tenant: str) -> int:
        return sum(len(spans) for spans in self.traces.get(tenant, {}).values())


def header(tenant: str) -> dict:
    return {} if tenant == DEFAULT_TENANT else {"X-Scope-OrgID": tenant}


def flush(server, may_die: bool) -> None:
    """POST /api/v1/flush; `may_die`: the crash may come before the answer (the armed step is elsewhere)."""
    try:
        r = requests.post(f"{server.query_url}/api/v1/flush", timeout=60)
    except requests.RequestException:
        if may_die:
            return
        raise
    assert r.status_code == 200 or may_die, f"flush: HTTP {r.status_code}: {r.text[:300]}"


def wait_for_crash(server, point: str, timeout: float = 60.0) -> None:
    try:
        rc = server.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"clew serve did not reach {point} within {timeout}s\n{server.log_tail()}") from None
    server.expected_dead = True
    log = server.log_path.read_text(errors="replace")
    assert rc == -signal.SIGABRT, f"expected an abort at {point}, got exit {rc}\n{server.log_tail()}"
    assert f"reached crash point {point}" in log, server.log_tail()


def restart(server, storage: Storage, flags: list[str]) -> None:
    server.env = storage.env()
    server.extra_args = storage.args() + flags
    server.start()


def listed_blocks(server, clew_bin: str, tenant: str) -> tuple[set[str], int]:
    """`clew blocks` for the tenant: the block ids it prints and its total of spans."""
    out = subprocess.run([clew_bin, "blocks", "--server", server.query_url, "--tenant", tenant],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    ids = set(re.findall(r"^([0-9A-Z]{26})\s", out.stdout, re.MULTILINE))
    total = re.search(r"^(\d+) blocks, (\d+) traces, (\d+) spans", out.stdout, re.MULTILINE)
    assert total and int(total.group(1)) == len(ids), out.stdout
    return ids, int(total.group(3))


def check(server, storage: Storage, data: Data, clew_bin: str, expired_gone: bool) -> dict[str, int]:
    """Storage, block listing, trace by id and search agree, and every span is there exactly once. Returns the
    spans in blocks per tenant."""
    in_storage = storage.complete_blocks(server)
    spans_in_blocks = {}
    for tenant in data.traces:
        ids, spans = listed_blocks(server, clew_bin, tenant)
        assert ids == in_storage.get(tenant, set()), f"{tenant}: listed {ids}, in storage {in_storage.get(tenant)}"
        spans_in_blocks[tenant] = spans
    assert set(in_storage) <= set(data.traces), f"blocks of unknown tenants: {set(in_storage) - set(data.traces)}"

    for tenant, traces in data.traces.items():
        expired = tenant in data.expired
        found = {}
        for tid, spans in traces.items():
            r = server.get_trace(tid, tenant=None if tenant == DEFAULT_TENANT else tenant)
            if expired and r.status_code == 404:
                continue
            assert not (expired and expired_gone), f"{tenant}: expired trace {tid.hex()} still there"
            assert r.status_code == 200, f"{tenant}: trace {tid.hex()}: HTTP {r.status_code} {r.text[:300]}"
            # Each span exactly once (assert_same_spans fails on a span that appears twice) and identical.
            assert_same_spans(otlp_json_to_proto(r.json()), request_of(spans, service=data.service))
            found[tid.hex()] = len(spans)
        if expired:
            assert len(found) in (0, len(traces)), f"{tenant}: a block is all or nothing, found {len(found)}"
        r = requests.get(f"{server.query_url}/api/v1/search", params={"service": data.service, "limit": 1000},
                         headers=header(tenant), timeout=30)
        assert r.status_code == 200, r.text
        summaries = {t["traceId"]: t for t in r.json()["traces"]}
        assert set(summaries) == set(found), f"{tenant}: search found {sorted(summaries)}, expected {sorted(found)}"
        for tid, count in found.items():
            got = (summaries[tid]["spanCount"], summaries[tid]["matchedSpans"])
            assert got == (count, count), f"{tenant}: trace {tid}: (spanCount, matchedSpans) = {got}, not {count}"
    return spans_in_blocks


def settle(server, storage: Storage, data: Data, timeout: float = 60.0) -> None:
    """Until the head is empty and each tenant has the blocks it should end with: one, none if expired."""
    deadline = time.monotonic() + timeout
    while True:
        # A compaction or retention may be deleting a block right now: its files go after its meta.
        blocks, stray = storage.blocks(server)
        head = Metrics(server.metrics_text()).sum("clew_head_spans")
        want = {t: 0 if t in data.expired else 1 for t in data.traces}
        have = {t: len(blocks.get(t, ())) for t in data.traces}
        # The segment being written stays; every one the blocks cover goes.
        segments = list((server.data_dir / "wal").glob("*.wal"))
        if head == 0 and have == want and not stray and len(segments) <= 1:
            return
        assert time.monotonic() < deadline, (f"not settled: head {head}, blocks {have} (want {want}), "
                                             f"unfinished {stray}, WAL {segments}\n{server.log_tail()}")
        time.sleep(0.2)


def recover_and_check(server, storage: Storage, data: Data, clew_bin: str, scenario_flags: list[str]) -> None:
    restart(server, storage, QUIET + scenario_flags)
    check(server, storage, data, clew_bin, expired_gone=False)
    server.kill()
    restart(server, storage, ACTIVE + scenario_flags)
    settle(server, storage, data)
    spans_in_blocks = check(server, storage, data, clew_bin, expired_gone=True)
    for tenant in data.traces:
        expected = 0 if tenant in data.expired else data.span_count(tenant)
        assert spans_in_blocks[tenant] == expected, f"{tenant}: blocks hold {spans_in_blocks[tenant]} spans, " \
            f"expected each of {expected} once"


def crashing_server(server_factory, storage: Storage, point: str, flags: list[str]):
    name = point.replace(":", "-")
    env = {**storage.env(), "CLEW_CRASH_AT": point}
    return server_factory(name, extra_args=storage.args() + flags, env=env)


@pytest.mark.parametrize("point", CUT_POINTS)
def test_a_crash_at_every_step_of_a_cut_loses_and_duplicates_nothing(server_factory, clew_bin, storage, point):
    server = crashing_server(server_factory, storage, point, QUIET)
    data = Data()
    end = time.time_ns() - 60 * 10**9
    traces = data.new_traces(DEFAULT_TENANT, 6, end)
    # Two requests, so the log holds the traces in several records.
    for half in (traces[:3], traces[3:]):
        data.send(server, DEFAULT_TENANT, [s for tid in half for s in data.traces[DEFAULT_TENANT][tid]])
    flush(server, may_die=True)
    wait_for_crash(server, point)
    recover_and_check(server, storage, data, clew_bin, [])


@pytest.mark.parametrize("point", COMPACT_POINTS)
def test_a_crash_at_every_step_of_a_compaction_loses_and_duplicates_nothing(server_factory, clew_bin, storage,
                                                                             point):
    # Compaction every second, so it runs once the second block is there.
    server = crashing_server(server_factory, storage, point, ["--compaction-interval-secs", "1"])
    data = Data()
    end = time.time_ns() - 60 * 10**9
    traces = data.new_traces(DEFAULT_TENANT, 6, end)
    spans = data.traces[DEFAULT_TENANT]
    # Every trace split over two blocks of the same window: root and first child, then the second child.
    data.send(server, DEFAULT_TENANT, [s for tid in traces for s in spans[tid][:2]])
    flush(server, may_die=False)
    data.send(server, DEFAULT_TENANT, [s for tid in traces for s in spans[tid][2:]])
    flush(server, may_die=True)
    wait_for_crash(server, point)
    recover_and_check(server, storage, data, clew_bin, [])


@pytest.mark.parametrize("point", RETENTION_POINTS)
def test_a_crash_at_every_step_of_retention_loses_and_duplicates_nothing(server_factory, clew_bin, storage, point):
    flags = ["--retention-hours", "1", "--compaction-window-secs", "60"]
    server = crashing_server(server_factory, storage, point, flags + ["--compaction-interval-secs", "1"])
    data = Data()
    now = time.time_ns()
    # One cut makes a block per tenant: two of spans three hours old (past retention) and one of recent spans.
    for tenant in OLD_TENANTS:
        data.new_traces(tenant, 3, now - 3 * HOUR_NS)
        data.expired.add(tenant)
    data.new_traces(DEFAULT_TENANT, 3, now - 60 * 10**9)
    for tenant, traces in data.traces.items():
        data.send(server, tenant, [s for spans in traces.values() for s in spans])
    flush(server, may_die=True)
    wait_for_crash(server, point)
    recover_and_check(server, storage, data, clew_bin, flags)


def test_an_unknown_crash_point_fails_the_start_and_every_point_is_tested_here(server_factory):
    server = server_factory("crash-typo", env={"CLEW_CRASH_AT": "cut:sometime"}, start=False)
    server.spawn()
    try:
        rc = server.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"clew serve still running\n{server.log_tail()}") from None
    server.expected_dead = True
    log = server.log_path.read_text(errors="replace")
    assert rc != 0 and "unknown crash point `cut:sometime`" in log, server.log_tail()
    # The error lists the binary's crash points: each one is crashed at by a test above.
    known = re.search(r"known: ([a-z_:, ]+)", log)
    assert known, server.log_tail()
    assert known.group(1).strip().split(", ") == CUT_POINTS + COMPACT_POINTS + RETENTION_POINTS
