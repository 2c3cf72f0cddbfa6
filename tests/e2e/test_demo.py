"""`clew demo`: the instrumented shop sends real OpenTelemetry SDK traces to Clew; everything below is checked
from Clew's API after the demo has stopped (its data dir is served again by a fresh `clew serve`).

Two runs: one without scenarios (whole trees, every propagation format, baggage, correlation ids, the queue), one
with every scenario on (each leaves its signature).
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from helpers import PORT_FLAGS, free_ports

SHOP = {"frontend", "auth", "cart", "checkout", "inventory", "payment", "payment-provider", "shipping"}
SCENARIOS = ["slow-payment-provider", "db-timeout", "n-plus-one", "retry-loop", "sequential-calls",
             "broken-context", "rare-service-everywhere"]
KIND_SERVER, KIND_CLIENT, KIND_PRODUCER, KIND_CONSUMER = 2, 3, 4, 5
STATUS_ERROR = 2


class Demo:
    """One finished `clew demo` run and a server on its data."""

    def __init__(self, stdout: str, data_dir: Path, server):
        self.stdout = stdout
        self.data_dir = data_dir
        self.server = server

    def traceql(self, q: str, limit: int = 50) -> list[str]:
        r = requests.get(f"{self.server.query_url}/api/v1/traceql?q={quote(q)}&limit={limit}", timeout=30)
        assert r.status_code == 200, r.text
        return [t["traceId"] for t in r.json()["traces"]]

    def trace(self, trace_id: str) -> list[dict]:
        r = requests.get(f"{self.server.query_url}/api/v1/traces/{trace_id}", timeout=30)
        assert r.status_code == 200, r.text
        return flatten(r.json())

    def examples(self) -> dict[str, str]:
        """The example trace ids `clew demo` printed, by label."""
        return dict(re.findall(r"^  (\S+(?: order)?)\s+trace ([0-9a-f]{32})  ", self.stdout, re.M))


def value(v: dict):
    (kind, inner), = v.items()
    return int(inner) if kind == "intValue" else inner


def flatten(doc: dict) -> list[dict]:
    spans = []
    for rs in doc["resourceSpans"]:
        resource = {a["key"]: value(a["value"]) for a in rs["resource"].get("attributes", [])}
        for ss in rs["scopeSpans"]:
            for s in ss["spans"]:
                spans.append({
                    "service": resource["service.name"],
                    "traceId": s["traceId"],
                    "spanId": s["spanId"],
                    "parent": s.get("parentSpanId") or None,
                    "name": s["name"],
                    "kind": s.get("kind"),
                    "start": int(s["startTimeUnixNano"]),
                    "end": int(s["endTimeUnixNano"]),
                    "error": (s.get("status") or {}).get("code") == STATUS_ERROR,
                    "traceState": s.get("traceState", ""),
                    "attrs": {a["key"]: value(a["value"]) for a in s.get("attributes", [])},
                    "links": s.get("links", []),
                })
    return spans


def by_id(spans):
    return {s["spanId"]: s for s in spans}


def roots(spans):
    ids = by_id(spans)
    return [s for s in spans if s["parent"] is None or s["parent"] not in ids]


def parent_of(spans, span):
    return by_id(spans).get(span["parent"])


def server(spans, service):
    return [s for s in spans if s["service"] == service and s["kind"] == KIND_SERVER]


def run_demo(clew_bin, tmp: Path, server_factory, name: str, seconds: int, scenarios=(), during=None,
             ctrl_c=False) -> Demo:
    """Runs `clew demo` for `seconds` (`--duration`, or SIGINT as from Ctrl-C); `during(frontend_url)` runs
    meanwhile. Then serves its data."""
    data_dir = tmp / name
    ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS))))
    args = [clew_bin, "demo", "--data-dir", str(data_dir), "--report-after", "4",
            "--rate", "8", "--otlp-grpc-port", str(ports["grpc"]), "--otlp-http-port", str(ports["http"]),
            "--query-port", str(ports["query"])]
    if not ctrl_c:
        args += ["--duration", str(seconds)]
    for scenario in scenarios:
        args += ["--scenario", scenario]
    args += ["--"] + [arg for key in ("zipkin", "tempo", "sampling", "telemetry")
                      for arg in (PORT_FLAGS[key], str(ports[key]))]
    out_path, err_path = tmp / f"{name}.out", tmp / f"{name}.err"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        proc = subprocess.Popen(args, stdout=out, stderr=err)
        try:
            deadline = time.monotonic() + 30
            while not (m := re.search(r"Shop: +(http://\S+)/api/orders", out_path.read_text())):
                assert proc.poll() is None and time.monotonic() < deadline, err_path.read_text()
                time.sleep(0.1)
            started = time.monotonic()
            if during is not None:
                during(m.group(1))
            if ctrl_c:
                time.sleep(max(0.0, seconds - (time.monotonic() - started)))
                proc.send_signal(signal.SIGINT)
            proc.wait(timeout=seconds + 45)
        finally:
            if proc.poll() is None:
                proc.kill()
    stdout = out_path.read_text()
    assert proc.returncode == 0, f"clew demo failed:\n{stdout}\n{err_path.read_text()}\n" + (
        (data_dir / "clew.log").read_text()[-3000:] if (data_dir / "clew.log").exists() else "")
    srv = server_factory(f"{name}-reader", data_dir=data_dir / "clew")
    return Demo(stdout, data_dir, srv)


def switch_scenarios_at_run_time(frontend: str) -> None:
    """The control endpoint: list, switch one on (sequential-calls), and refuse bad input."""
    listed = requests.get(f"{frontend}/scenarios", timeout=10).json()["scenarios"]
    assert [s["name"] for s in listed] == SCENARIOS
    assert {s["name"] for s in listed if s["enabled"]} == set(SCENARIOS) - {"sequential-calls"}
    assert all(s["traceql"].startswith("{") and s["description"] for s in listed)
    time.sleep(2)  # some orders before the switch
    r = requests.post(f"{frontend}/scenarios/sequential-calls", timeout=10)
    assert r.status_code == 200 and r.json() == {"name": "sequential-calls", "enabled": True}
    r = requests.post(f"{frontend}/scenarios/no-such-thing", timeout=10)
    assert r.status_code == 404 and "retry-loop" in r.json()["error"]
    r = requests.post(f"{frontend}/scenarios/retry-loop?enabled=maybe", timeout=10)
    assert r.status_code == 400 and "maybe" in r.json()["error"]
    listed = requests.get(f"{frontend}/scenarios", timeout=10).json()["scenarios"]
    assert all(s["enabled"] for s in listed)


@pytest.fixture(scope="module")
def baseline(clew_bin, tmp_path_factory, module_server_factory) -> Demo:
    # Stopped as a user would, with Ctrl-C: the orders in flight finish and every span is flushed.
    return run_demo(clew_bin, tmp_path_factory.mktemp("demo"), module_server_factory, "baseline", 7, ctrl_c=True)


@pytest.fixture(scope="module")
def failing(clew_bin, tmp_path_factory, module_server_factory) -> Demo:
    # Every scenario from the start but sequential-calls, which is switched on at run time.
    return run_demo(clew_bin, tmp_path_factory.mktemp("demo"), module_server_factory, "failing", 10,
                    [s for s in SCENARIOS if s != "sequential-calls"], during=switch_scenarios_at_run_time)


@pytest.fixture(scope="module")
def orders(baseline) -> list[list[dict]]:
    """Whole orders of the baseline run: the traces that reached shipping."""
    ids = baseline.traceql('{ resource.service.name = "shipping" && kind = consumer }', limit=20)
    assert len(ids) >= 10, ids
    return [baseline.trace(t) for t in ids]


# -- the shop without failures ---------------------------------------------------------------------------------


def test_demo_prints_the_ui_and_an_example_order(baseline):
    assert f"UI:         {baseline.server.query_url.rsplit(':', 1)[0]}" in baseline.stdout
    examples = baseline.examples()
    assert set(examples) == {"complete order"}, baseline.stdout
    spans = baseline.trace(examples["complete order"])
    assert {s["service"] for s in spans} >= SHOP
    assert "Stopping (Ctrl-C)" in baseline.stdout
    assert re.search(r"Sent (\d+) orders: \1 succeeded, 0 failed", baseline.stdout), baseline.stdout


def test_every_order_is_one_tree_over_every_service(orders):
    for spans in orders:
        assert {s["service"] for s in spans} >= SHOP
        assert len({s["traceId"] for s in spans}) == 1
        (root,) = roots(spans)
        assert root["service"] == "frontend" and root["kind"] == KIND_SERVER and root["parent"] is None
        assert root["attrs"]["http.route"] == "/api/orders" and root["attrs"]["http.response.status_code"] == 200
        assert not any(s["error"] for s in spans)


@pytest.mark.parametrize("callee,caller,fmt", [
    ("auth", "frontend", "w3c"),
    ("cart", "frontend", "b3"),
    ("checkout", "frontend", "w3c"),
    ("inventory", "checkout", "jaeger"),
    ("payment", "checkout", "w3c"),
    ("payment-provider", "payment", "w3c"),
])
def test_each_hop_keeps_the_trace_and_the_parent(orders, callee, caller, fmt):
    for spans in orders:
        (entry,) = server(spans, callee)
        assert entry["attrs"]["propagation.format"] == fmt
        client = parent_of(spans, entry)
        assert client is not None, f"{callee} lost its parent"
        assert client["service"] == caller and client["kind"] == KIND_CLIENT
        assert client["attrs"]["peer.service"] == callee and client["attrs"]["propagation.format"] == fmt
        assert client["attrs"]["url.full"].endswith(entry["attrs"]["url.path"])
        assert client["attrs"]["http.response.status_code"] == entry["attrs"]["http.response.status_code"] == 200


def test_tracestate_travels_on_w3c_hops_only(orders):
    # The SDKs' sampler writes `ot=th:0` (kept with probability 1) into the tracestate of the traces they start.
    w3c = {"frontend", "auth", "checkout", "payment", "payment-provider", "shipping"}
    for spans in orders:
        for s in spans:
            expected = "ot=th:0" if s["service"] in w3c else ""  # B3 (cart) and Jaeger (inventory) have no tracestate
            assert s["traceState"] == expected, s


def test_the_queue_hop_continues_the_trace_and_the_batch_links_to_it(baseline, orders):
    for spans in orders:
        (consumer,) = [s for s in spans if s["service"] == "shipping"]
        assert consumer["kind"] == KIND_CONSUMER
        producer = parent_of(spans, consumer)
        assert producer["service"] == "checkout" and producer["kind"] == KIND_PRODUCER
        assert producer["attrs"]["messaging.destination.name"] == consumer["attrs"]["messaging.destination.name"]
        assert producer["attrs"]["messaging.message.id"] == consumer["attrs"]["messaging.message.id"]
        assert consumer["attrs"]["messaging.operation.type"] == "process"
    # email reads batches: its own trace, linked to each order's producer span.
    producers = {(s["traceId"], s["spanId"]) for spans in orders for s in spans if s["kind"] == KIND_PRODUCER}
    linked = set()
    for trace_id in baseline.traceql('{ resource.service.name = "email" }', limit=50):
        (batch,) = baseline.trace(trace_id)
        assert batch["parent"] is None and batch["kind"] == KIND_CONSUMER
        assert batch["attrs"]["messaging.batch.message_count"] == len(batch["links"]) >= 1
        linked |= {(link["traceId"], link["spanId"]) for link in batch["links"]}
    assert producers <= linked


def test_baggage_and_the_correlation_id_reach_every_service(baseline, orders):
    generated = preserved = 0
    log = (baseline.data_dir / "shop.log").read_text()
    for spans in orders:
        (root,) = roots(spans)
        request_id, user = root["attrs"]["request.id"], root["attrs"]["user.id"]
        assert user.startswith("user-")
        if request_id.startswith("drv-"):
            preserved += 1
        else:
            assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", request_id)
            generated += 1
        entries = [s for s in spans if s["kind"] in (KIND_SERVER, KIND_CONSUMER)]
        assert {s["service"] for s in entries} == SHOP
        for s in entries:
            assert s["attrs"]["request.id"] == request_id, s
            assert s["attrs"]["user.id"] == user, s  # only baggage carries the user
        # Every log line of the request names its trace, its span and the correlation id.
        lines = [line for line in log.splitlines() if f"trace_id={root['traceId']}" in line]
        assert lines and all(f"request_id={request_id}" in line for line in lines)
        assert {re.search(r"span_id=([0-9a-f]{16})", line).group(1) for line in lines} <= set(by_id(spans))
    assert generated and preserved


def test_auth_and_cart_are_called_in_parallel_normally(orders):
    overlapping = 0
    for spans in orders:
        auth, cart = (parent_of(spans, server(spans, name)[0]) for name in ("auth", "cart"))
        overlapping += auth["start"] < cart["end"] and cart["start"] < auth["end"]
        assert server(spans, "frontend")[0]["attrs"]["app.fanout"] == "parallel"
    assert overlapping >= len(orders) // 2


def test_bad_arguments_are_refused(clew_bin, tmp_path):
    for args, message in [(["--scenario", "bogus"], "unknown scenario \"bogus\""),
                          (["--rate", "0"], "--rate must be above 0"),
                          (["--duration=-1"], "--duration must be")]:
        proc = subprocess.run([clew_bin, "demo", "--data-dir", str(tmp_path / "d"), *args],
                              capture_output=True, text=True, timeout=30)
        assert proc.returncode != 0 and message in proc.stderr, proc.stderr
    assert not (tmp_path / "d").exists()


# -- every scenario on -------------------------------------------------------------------------------------------


def test_every_scenario_gets_an_example_trace(failing):
    examples = failing.examples()
    assert set(examples) == {"complete order", *SCENARIOS}, failing.stdout
    for label, trace_id in examples.items():
        assert failing.trace(trace_id), label


def test_slow_payment_provider(failing):
    ids = failing.traceql('{ resource.service.name = "payment-provider" && kind = server }', limit=20)
    assert ids
    for trace_id in ids:
        spans = failing.trace(trace_id)
        for provider in server(spans, "payment-provider"):
            assert provider["end"] - provider["start"] >= 1_000_000_000


def test_db_timeout_is_three_calls_deep_and_vague_at_the_entry(failing):
    ids = failing.traceql('{ span.db.system.name = "sqlite" && status = error }', limit=10)
    assert ids
    for trace_id in ids:
        spans = failing.trace(trace_id)
        (origin,) = [s for s in spans if s["error"] and s["attrs"].get("db.system.name") == "sqlite"]
        assert origin["service"] == "inventory" and origin["attrs"]["error.type"] == "SQLITE_BUSY"
        assert origin["attrs"]["db.query.text"].startswith("UPDATE items")
        chain, span = [], origin
        while span is not None:
            chain.append(span)
            span = parent_of(spans, span)
        services = [s["service"] for s in chain if s["kind"] == KIND_SERVER]
        assert services == ["inventory", "checkout", "frontend"]
        assert all(s["error"] for s in chain)
        entry = chain[-1]
        assert entry["attrs"]["http.response.status_code"] == 500 and entry["parent"] is None
        # Nothing after the failed reservation ran.
        assert not {"payment", "shipping"} & {s["service"] for s in spans}


def test_n_plus_one_selects(failing):
    ids = failing.traceql('{ resource.service.name = "inventory" && span.db.operation.name = "SELECT" } | count() > 3')
    assert ids
    for trace_id in ids[:10]:
        spans = failing.trace(trace_id)
        selects = [s for s in spans if s["attrs"].get("db.operation.name") == "SELECT"]
        assert len(selects) >= 4
        assert {s["attrs"]["db.query.text"] for s in selects} == {"SELECT id, price_cents, stock FROM items WHERE id = ?"}
        assert len({s["parent"] for s in selects}) == 1


def test_retry_loop(failing):
    ids = failing.traceql('{ resource.service.name = "payment" && span.http.request.resend_count > 0 }', limit=10)
    assert ids
    for trace_id in ids:
        spans = failing.trace(trace_id)
        calls = sorted((s for s in spans if s["service"] == "payment" and s["kind"] == KIND_CLIENT
                        and s["attrs"]["peer.service"] == "payment-provider"), key=lambda s: s["start"])
        assert [s["attrs"].get("http.request.resend_count", 0) for s in calls] == [0, 1, 2, 3]
        assert [s["attrs"]["http.response.status_code"] for s in calls] == [503, 503, 503, 200]
        assert [s["error"] for s in calls] == [True, True, True, False]


def test_sequential_calls_after_the_switch(failing):
    before = failing.traceql('{ resource.service.name = "frontend" && span.app.fanout = "parallel" }', limit=10)
    assert before, "orders before the run-time switch were parallel"
    ids = failing.traceql('{ resource.service.name = "frontend" && span.app.fanout = "sequential" }', limit=10)
    assert ids
    for trace_id in ids:
        spans = failing.trace(trace_id)
        (root,) = [s for s in spans if s["service"] == "frontend" and s["kind"] == KIND_SERVER]
        calls = {s["attrs"]["peer.service"]: s for s in spans if s["parent"] == root["spanId"]}
        assert calls["auth"]["end"] <= calls["cart"]["start"]


def test_broken_context_leaves_two_fragments_joined_by_the_request_id(failing):
    ids = failing.traceql('{ trace:rootService = "payment" }', limit=10)
    assert ids
    for trace_id in ids:
        fragment = failing.trace(trace_id)
        (root,) = roots(fragment)
        assert root["service"] == "payment" and root["kind"] == KIND_SERVER and root["parent"] is None
        assert "user.id" not in root["attrs"]  # the baggage was dropped with the context
        request_id = root["attrs"]["request.id"]
        (head_id,) = failing.traceql(f'{{ resource.service.name = "frontend" && span.request.id = "{request_id}" }}')
        assert head_id != trace_id
        head = failing.trace(head_id)
        (dangling,) = [s for s in head if s["attrs"].get("peer.service") == "payment"]
        assert dangling["attrs"]["propagation.format"] == "none"
        assert not [s for s in head if s["parent"] == dangling["spanId"]]
        assert {"frontend", "checkout", "inventory"} <= {s["service"] for s in head}


def test_rare_service_in_every_payment(failing):
    ids = failing.traceql('{ resource.service.name = "payment" && kind = server }', limit=20)
    assert ids
    for trace_id in ids:
        services = {s["service"] for s in failing.trace(trace_id)}
        assert "fraud-check" in services
