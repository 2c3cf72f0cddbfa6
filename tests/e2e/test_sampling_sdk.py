"""A real SDK fetches its head sampling strategy from Clew: OpenTelemetry's Node `JaegerRemoteSampler`
(tests/sampling-sdk/check.mjs, installed by scripts/test.sh with `npm ci`) polls Clew's sampling port, and the
share of root spans it records follows the strategies file as the test edits it (Clew re-reads the file
every `reload_interval`).
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import time
from pathlib import Path

import pytest

SDK_DIR = Path(__file__).resolve().parents[1] / "sampling-sdk"
SERVICE = "sdk-check"
ROOTS = 20_000


def strategies(service_rate: float, operations: dict[str, float] | None = None) -> str:
    service = {"service": SERVICE, "type": "probabilistic", "param": service_rate}
    if operations:
        service["operation_strategies"] = [
            {"operation": op, "type": "probabilistic", "param": p} for op, p in operations.items()
        ]
    return json.dumps({
        "default_strategy": {"type": "probabilistic", "param": 1.0},
        "service_strategies": [service],
    })


def write_atomically(path: Path, text: str) -> None:
    """Replace the file in one step, so a reload never reads it half written."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


class SdkProcess:
    """check.mjs: one `measure` line in, one JSON line out."""

    def __init__(self, sampling_url: str):
        node = shutil.which("node")
        if node is None or not (SDK_DIR / "node_modules" / "@opentelemetry" / "sampler-jaeger-remote").is_dir():
            pytest.fail(f"needs Node.js and `npm ci` in {SDK_DIR} (scripts/test.sh does both)", pytrace=False)
        self.proc = subprocess.Popen(
            [node, str(SDK_DIR / "check.mjs"), sampling_url, SERVICE, "200"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
        )

    def measure(self, name: str = "home") -> dict:
        self.proc.stdin.write(f"measure {name} {ROOTS}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, f"check.mjs ended: {self.proc.stderr.read()[-2000:]}"
        result = json.loads(line)
        assert result["roots"] == ROOTS, result
        return result

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def within(rate: float, p: float) -> bool:
    """Within 5 standard deviations of the binomial share (a false alarm is ~1 in 3 million)."""
    return abs(rate - p) <= 5 * math.sqrt(p * (1 - p) / ROOTS) + 1e-9


def wait_for_rate(sdk: SdkProcess, p: float, name: str = "home", timeout: float = 15) -> dict:
    """Measures until the SDK's rate is p (the strategy reached it), or fails with the last measurements."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        result = sdk.measure(name)
        seen.append(result["rate"])
        if within(result["rate"], p):
            return result
        time.sleep(0.1)
    raise AssertionError(f"sampling rate of {name!r} never reached {p}: measured {seen[-10:]}")


def test_the_sdk_sampling_rate_follows_clews_strategy(server_factory, tmp_path):
    strategies_file = tmp_path / "strategies.json"
    write_atomically(strategies_file, strategies(0.1))
    config = tmp_path / "clew.toml"
    config.write_text(f"""
[remote_sampling]
strategies_file = "{strategies_file}"
reload_interval = "200ms"
""")
    server = server_factory("sdk", extra_args=["--config", str(config)])
    sdk = SdkProcess(server.sampling_url)
    try:
        # The sampler starts AlwaysOff: a 10% rate can only come from Clew.
        first = wait_for_rate(sdk, 0.1)
        assert "TraceIdRatioBased{0.1}" in first["sampler"], first["sampler"]
        # Stable once there: three more independent measurements agree.
        for _ in range(3):
            assert within(sdk.measure()["rate"], 0.1)

        write_atomically(strategies_file, strategies(0.5))
        wait_for_rate(sdk, 0.5)
        for _ in range(3):
            assert within(sdk.measure()["rate"], 0.5)

        # Per-operation strategies: the SDK samples `checkout` at its own rate, the rest at the service's.
        write_atomically(strategies_file, strategies(0.2, {"checkout": 0.9}))
        wait_for_rate(sdk, 0.9, name="checkout")
        assert within(sdk.measure("home")["rate"], 0.2)
    finally:
        sdk.close()
