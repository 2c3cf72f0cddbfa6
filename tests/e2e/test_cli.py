"""The `clew` command line: `clew trace`, `clew --version`, `clew serve --help`, and flags
given as CLEW_* environment variables."""

from __future__ import annotations

import os
import re
import subprocess
import time

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.trace import SpanKind, set_span_in_context

from helpers import PORT_FLAGS, ClewServer, free_ports, simple_request
from sdk_util import SdkPipeline

SERVE_FLAGS = [
    "--data-dir", "--listen", "--otlp-grpc-port", "--otlp-http-port", "--zipkin-port", "--query-port",
    "--telemetry-port", "--max-request-bytes", "--max-attributes-per-span", "--max-attribute-value-bytes",
    "--head-max-bytes", "--config",
]


def run(clew_bin, *args, timeout=30, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([clew_bin, *args], capture_output=True, text=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL)


def send_two_service_trace(server) -> tuple[int, list[str]]:
    front = SdkPipeline(HttpExporter(endpoint=server.traces_url, timeout=10), {"service.name": "cli-frontend"})
    back = SdkPipeline(HttpExporter(endpoint=server.traces_url, timeout=10), {"service.name": "cli-backend"})
    try:
        ft = front.provider.get_tracer("cli")
        bt = back.provider.get_tracer("cli")
        t0 = time.time_ns()
        root = ft.start_span("GET /checkout", kind=SpanKind.SERVER, start_time=t0)
        ctx = set_span_in_context(root)
        call = ft.start_span("POST /charge", context=ctx, kind=SpanKind.CLIENT, start_time=t0 + 1_000_000)
        handle = bt.start_span("charge-card", context=set_span_in_context(call), kind=SpanKind.SERVER,
                               start_time=t0 + 2_000_000)
        db = bt.start_span("SELECT orders", context=set_span_in_context(handle), kind=SpanKind.CLIENT,
                           start_time=t0 + 3_000_000)
        db.end(end_time=t0 + 8_000_000)
        handle.end(end_time=t0 + 9_000_000)
        call.end(end_time=t0 + 10_000_000)
        root.end(end_time=t0 + 20_000_000)
        front.flush_and_check()
        back.flush_and_check()
        return root.get_span_context().trace_id, ["GET /checkout", "POST /charge", "charge-card", "SELECT orders"]
    finally:
        front.shutdown()
        back.shutdown()


def indent_of(out: str, name: str, service: str) -> int:
    """Column where the span's entry (its service or name, whichever comes first) starts."""
    lines = [l for l in out.splitlines() if name in l]
    assert len(lines) == 1, f"expected exactly one line with {name!r}:\n{out}"
    line = lines[0]
    assert service in line, f"line for {name!r} does not show its service {service!r}:\n{out}"
    return min(line.index(name), line.index(service))


def test_clew_trace_prints_tree(clew_bin, server):
    trace_id, names = send_two_service_trace(server)
    res = run(clew_bin, "trace", f"{trace_id:032x}", "--server", server.query_url)
    assert res.returncode == 0, f"rc {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    out = res.stdout
    for name in names:
        assert name in out, f"span {name!r} missing:\n{out}"
    for svc in ("cli-frontend", "cli-backend"):
        assert svc in out, f"service {svc!r} missing:\n{out}"
    # Indented tree: each child's name starts further right than its parent's.
    services = ["cli-frontend", "cli-frontend", "cli-backend", "cli-backend"]
    cols = [indent_of(out, n, svc) for n, svc in zip(names, services)]
    assert cols[0] < cols[1] < cols[2] < cols[3], f"not indented as a tree (columns {cols}):\n{out}"
    # Durations are shown (root 20 ms; db 5 ms) in some unit.
    assert re.search(r"20(\.0+)?\s*ms|20000(\.0+)?\s*µs|0\.02(0*)?\s*s", out), f"root duration missing:\n{out}"


def test_clew_trace_absent_trace_fails(clew_bin, server):
    res = run(clew_bin, "trace", "0123456789abcdef0123456789abcdef", "--server", server.query_url)
    assert res.returncode != 0, f"absent trace should be an error:\n{res.stdout}"
    assert (res.stdout + res.stderr).strip()


def test_clew_version(clew_bin):
    res = run(clew_bin, "--version")
    assert res.returncode == 0, res.stderr
    assert re.search(r"clew\S*\s+\d+\.\d+\.\d+", res.stdout), res.stdout


def test_clew_serve_help_mentions_every_flag(clew_bin):
    res = run(clew_bin, "serve", "--help")
    assert res.returncode == 0, res.stderr
    missing = [f for f in SERVE_FLAGS if f not in res.stdout]
    assert not missing, f"`clew serve --help` does not mention {missing}:\n{res.stdout}"
    env_missing = [f"CLEW_{f[2:].upper().replace('-', '_')}" for f in SERVE_FLAGS
                   if f"CLEW_{f[2:].upper().replace('-', '_')}" not in res.stdout]
    assert not env_missing, f"`clew serve --help` does not mention env vars {env_missing}:\n{res.stdout}"


def test_serve_configured_by_environment(clew_bin, tmp_path):
    """Every flag is also CLEW_<UPPER_SNAKE>: start a server configured only by environment."""
    ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS))))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLEW_")}
    env.update({
        "CLEW_DATA_DIR": str(tmp_path / "env-data"),
        "CLEW_LISTEN": "127.0.0.1",
        "CLEW_MAX_ATTRIBUTES_PER_SPAN": "2",
        **{f"CLEW_{flag[2:].upper().replace('-', '_')}": str(ports[key]) for key, flag in PORT_FLAGS.items()},
    })
    log = open(tmp_path / "env.log", "wb")
    proc = subprocess.Popen([clew_bin, "serve"], env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                            cwd=tmp_path)
    srv = ClewServer(clew_bin, tmp_path, name="env")
    srv.ports = ports
    srv.proc = proc
    try:
        srv.wait_ready(20, time.monotonic())
        tid, req = simple_request(1)
        srv.export_http_proto(req)
        assert srv.fetch_trace(tid).resource_spans
        assert (tmp_path / "env-data").is_dir(), "CLEW_DATA_DIR not used"
        # CLEW_MAX_ATTRIBUTES_PER_SPAN=2 took effect: simple spans carry 2 attributes; 3 is too many.
        _, req3 = simple_request(1)
        req3.resource_spans[0].scope_spans[0].spans[0].attributes.add(key="third").value.string_value = "x"
        assert srv.export_http_proto(req3).partial_success.rejected_spans == 1
    finally:
        srv.kill()
        log.close()
