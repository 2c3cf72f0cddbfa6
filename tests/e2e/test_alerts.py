"""Alerts on SLOs: rules from the config file, evaluated over a sliding window of the live span metrics, fire and
resolve against a local webhook receiver started here (Clew's generic JSON and Slack's format), with links to
example traces that resolve to stored traces; the same state is on `GET /api/v1/alerts` and on /metrics
(parsed by prometheus-client's OpenMetrics parser)."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from helpers import Span, Status, assert_full_success, rand_span_id, rand_trace_id, request_of, simple_span

MS = 1_000_000
SERVICE = "alert-checkout"
OPERATION = "POST /pay"
EXTERNAL = "https://clew.example.com/ui"
WINDOW_S = 3


class Receiver:
    """A webhook receiver: records every POST body by path; the first POST to /generic gets a 503, so Clew's
    retry is exercised."""

    def __init__(self):
        self.posts: list[tuple[str, dict]] = []
        self.attempts: dict[str, int] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.attempts[self.path] = receiver.attempts.get(self.path, 0) + 1
                    first_generic = self.path == "/generic" and receiver.attempts[self.path] == 1
                    if not first_generic:
                        assert self.headers["Content-Type"] == "application/json"
                        receiver.posts.append((self.path, json.loads(body)))
                self.send_response(503 if first_generic else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def bodies(self, path: str, rule: str | None = None, status: str | None = None) -> list[dict]:
        with self.lock:
            found = [b for p, b in self.posts if p == path]
        if path == "/generic":
            return [b for b in found if (rule is None or b["rule"]["name"] == rule)
                    and (status is None or b["status"] == status)]
        return [b for b in found if (rule is None or f" {rule}" in b["text"])
                and (status is None or b["text"].startswith(f"[{status.upper()}]"))]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def config(receiver: Receiver) -> str:
    return f"""
[alerts]
evaluation_interval = "500ms"
external_url = "{EXTERNAL}"

[[alerts.rules]]
name = "checkout-latency"
service = "{SERVICE}"
operation = "{OPERATION}"
kind = "server"
condition = "p99 > 500ms"
window = "{WINDOW_S}s"
for = "2s"
description = "Payments are slow"

[[alerts.rules]]
name = "checkout-errors"
service = "{SERVICE}"
condition = "error_ratio > 10%"
window = "{WINDOW_S}s"

[[alerts.rules]]
name = "checkout-mostly-failing"
service = "{SERVICE}"
condition = "error_ratio > 50%"
window = "{WINDOW_S}s"

[[alerts.webhooks]]
name = "ops-json"
url = "{receiver.url}/generic"
timeout = "2s"

[[alerts.webhooks]]
name = "ops-slack"
url = "{receiver.url}/slack"
format = "slack"
"""


def send(server, millis: int, failing: bool, count: int) -> list[str]:
    """`count` one-span traces of the watched operation, ending now; returns their trace ids (hex)."""
    now = time.time_ns()
    spans, ids = [], []
    for _ in range(count):
        trace_id = rand_trace_id()
        span = simple_span(trace_id, rand_span_id(), name=OPERATION, start=now - millis * MS, duration=millis * MS,
                           kind=Span.SPAN_KIND_SERVER)
        if failing:
            span.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message="card declined"))
        spans.append(span)
        ids.append(trace_id.hex())
    assert_full_success(server.export_http_proto(request_of(spans, service=SERVICE)))
    return ids


def wait_for(what: str, check, traffic, timeout: float = 30.0):
    """Sends traffic every 200 ms until `check()` answers something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        traffic()
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def families(server) -> dict:
    r = requests.get(f"{server.telemetry_url}/metrics", timeout=10)
    assert r.status_code == 200
    return {f.name: f for f in text_string_to_metric_families(r.text)}


def sample_value(fams, family: str, **labels) -> float | None:
    found = [s.value for s in fams[family].samples if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) <= 1
    return found[0] if found else None


def alerts(server) -> dict[str, dict]:
    r = requests.get(f"{server.query_url}/api/v1/alerts", timeout=10)
    assert r.status_code == 200, r.text
    return {rule["name"]: rule for rule in r.json()["rules"]}


def assert_example_traces(server, examples: list[dict], sent: set[str], want_error: bool):
    assert examples, "no example traces"
    for example in examples:
        trace_id = example["traceId"]
        assert example["url"] == f"{EXTERNAL}/trace/{trace_id}"
        assert trace_id in sent, "an example must be a span of the bad traffic"
        r = server.get_trace(trace_id)
        assert r.status_code == 200, f"example trace {trace_id} is not stored: {r.status_code}"
        assert len(example["spanId"]) == 16
    if want_error:
        assert all(e["error"] for e in examples), "error rules show failing spans"


def test_rules_fire_and_resolve_with_webhooks_api_and_metrics(server_factory, receiver, tmp_path):
    path = tmp_path / "clew.toml"
    path.write_text(config(receiver))
    server = server_factory("alerts", extra_args=["--config", str(path)])

    # Before any traffic: every rule inactive, nothing sent.
    rules = alerts(server)
    assert {r["state"] for r in rules.values()} == {"inactive"}
    assert rules["checkout-latency"]["condition"] == "p99 > 500ms"
    assert rules["checkout-latency"]["for"] == "2s" and rules["checkout-latency"]["window"] == "3s"

    # Bad traffic: slow calls, one in three failing (33% errors: above 10%, below 50%).
    bad: set[str] = set()

    def bad_traffic():
        bad.update(send(server, 900, failing=False, count=2))
        bad.update(send(server, 900, failing=True, count=1))

    started = time.monotonic()
    fired = wait_for(
        "both rules to fire on both webhooks",
        lambda: all(receiver.bodies(p, rule, "firing") for p in ("/generic", "/slack")
                    for rule in ("checkout-latency", "checkout-errors")),
        bad_traffic,
    )
    assert fired
    # The latency rule waited out its `for` (2s) before firing; the error rule (no `for`) fired at once.
    assert time.monotonic() - started >= 2.0

    latency = receiver.bodies("/generic", "checkout-latency", "firing")
    assert len(latency) == 1, "one notification per firing"
    body = latency[0]
    assert body["version"] == "1"
    assert body["rule"]["service"] == SERVICE and body["rule"]["operation"] == OPERATION
    assert body["rule"]["kind"] == "server" and body["rule"]["description"] == "Payments are slow"
    assert body["threshold"] == 0.5 and body["thresholdText"] == "500ms"
    # Every span took 900 ms: the p99, interpolated in the (0.8, 1] bucket, is above the threshold.
    assert 0.8 < body["value"] <= 1.0 and body["valueText"].endswith("ms")
    assert body["firedAt"] and body["resolvedAt"] is None
    assert body["alertsUrl"] == f"{EXTERNAL}/alerts"
    assert "checkout-latency is firing: p99 of alert-checkout \"POST /pay\"" in body["summary"]
    assert_example_traces(server, body["exampleTraces"], bad, want_error=False)

    errors = receiver.bodies("/generic", "checkout-errors", "firing")[0]
    assert errors["value"] == pytest.approx(1 / 3, abs=0.05)
    assert errors["valueText"].endswith("%")
    assert_example_traces(server, errors["exampleTraces"], bad, want_error=True)
    # The first delivery got a 503 and was retried.
    assert receiver.attempts["/generic"] >= 3

    slack = receiver.bodies("/slack", "checkout-latency", "firing")[0]
    assert slack["text"].startswith("[FIRING] checkout-latency is firing")
    assert "p99 &gt; 500ms" in slack["text"], "Slack's control characters are escaped"
    kinds = [b["type"] for b in slack["blocks"]]
    assert kinds[0] == "header" and kinds[-1] == "context"
    assert slack["blocks"][0]["text"]["text"].endswith("Firing: checkout-latency")
    links = [b["text"]["text"] for b in slack["blocks"] if "Example traces" in b.get("text", {}).get("text", "")]
    assert links, slack
    for example in body["exampleTraces"]:
        assert f"<{example['url']}|{example['traceId'][:16]}>" in links[0]

    # The API and /metrics agree.
    rules = alerts(server)
    assert rules["checkout-latency"]["state"] == "firing"
    assert rules["checkout-latency"]["since"] and rules["checkout-latency"]["firedAt"]
    assert rules["checkout-latency"]["value"] > 0.5
    assert_example_traces(server, rules["checkout-latency"]["exampleTraces"], bad, want_error=False)
    assert rules["checkout-mostly-failing"]["state"] == "inactive"
    assert 0.2 < rules["checkout-mostly-failing"]["value"] < 0.5
    fams = families(server)
    assert fams["clew_alert_firing"].type == "gauge"
    assert sample_value(fams, "clew_alert_firing", rule="checkout-latency") == 1
    assert sample_value(fams, "clew_alert_firing", rule="checkout-errors") == 1
    assert sample_value(fams, "clew_alert_firing", rule="checkout-mostly-failing") == 0
    assert 0.8 < sample_value(fams, "clew_alert_value", rule="checkout-latency") <= 1.0
    assert sample_value(fams, "clew_alert_threshold", rule="checkout-errors") == pytest.approx(0.1)
    assert sample_value(fams, "clew_alert_notifications", webhook="ops-json", outcome="sent") >= 2

    # Good traffic only: once the bad calls leave the window, both rules resolve.
    wait_for(
        "both rules to resolve on both webhooks",
        lambda: all(receiver.bodies(p, rule, "resolved") for p in ("/generic", "/slack")
                    for rule in ("checkout-latency", "checkout-errors")),
        lambda: send(server, 20, failing=False, count=3),
        timeout=WINDOW_S + 20,
    )
    resolved = receiver.bodies("/generic", "checkout-latency", "resolved")
    assert len(resolved) == 1
    resolved = resolved[0]
    assert resolved["resolvedAt"] and resolved["firedAt"] == body["firedAt"]
    assert resolved["value"] < 0.5, "the p99 of the window is that of the fast calls"
    # The resolution links the traces that made the rule fire.
    assert [e["traceId"] for e in resolved["exampleTraces"]] == [e["traceId"] for e in body["exampleTraces"]]
    slack_resolved = receiver.bodies("/slack", "checkout-latency", "resolved")[0]
    assert slack_resolved["text"].startswith("[RESOLVED] checkout-latency is resolved")
    assert not receiver.bodies("/generic", "checkout-mostly-failing"), "an inactive rule sends nothing"

    rules = alerts(server)
    assert rules["checkout-latency"]["state"] == "inactive" and rules["checkout-latency"]["resolvedAt"]
    fams = families(server)
    assert sample_value(fams, "clew_alert_firing", rule="checkout-latency") == 0
    assert sample_value(fams, "clew_alert_value", rule="checkout-errors") <= 0.1


@pytest.mark.parametrize(
    "rule, message",
    [
        ('condition = "p99 > 500"', "needs a unit"),
        ('condition = "p99 >> 1s"', "unknown operator"),
        ('condition = "latency > 1s"', "unknown metric"),
        ('condition = "rate < 1"\nkind = "srv"', "unknown kind"),
    ],
)
def test_bad_rules_stop_the_start_with_a_clear_error(clew_bin, tmp_path, rule, message):
    path = tmp_path / "clew.toml"
    path.write_text(f'[[alerts.rules]]\nname = "r"\nservice = "s"\n{rule}\n')
    result = subprocess.run([clew_bin, "serve", "--config", str(path), "--data-dir", str(tmp_path / "data")],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
