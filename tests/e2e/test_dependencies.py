"""The service dependency graph, live and over a time range: a generated topology (an HTTP call, a queue hop, a
database and an external peer) sent over OTLP, then read back as the live `traces_service_graph_*` metrics on
/metrics (OpenMetrics parser), Jaeger's `/api/dependencies`, Zipkin's `/api/v2/dependencies` and the native
`/api/v1/dependencies`."""

from __future__ import annotations

import time

import pytest
import requests
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from helpers import Span, Status, assert_full_success, rand_span_id, rand_trace_id, request_of, simple_span

MS = 1_000_000
TRACES = 3
# name: (service, parent, start ms, end ms, kind, attributes)
TOPOLOGY = {
    "GET /": ("dep-web", None, 0, 100, Span.SPAN_KIND_SERVER, {}),
    "call api": ("dep-web", "GET /", 1, 90, Span.SPAN_KIND_CLIENT, {}),
    "GET /api": ("dep-api", "call api", 2, 80, Span.SPAN_KIND_SERVER, {}),
    "SELECT orders": ("dep-api", "GET /api", 3, 7, Span.SPAN_KIND_CLIENT,
                      {"db.system": "postgresql", "db.name": "orders"}),
    "GET session": ("dep-api", "GET /api", 8, 9, Span.SPAN_KIND_CLIENT,
                    {"db.system.name": "redis", "db.namespace": "sessions"}),
    "charge": ("dep-api", "GET /api", 20, 50, Span.SPAN_KIND_CLIENT, {"server.address": "payments.example.com"}),
    "publish": ("dep-api", "GET /api", 60, 61, Span.SPAN_KIND_PRODUCER, {}),
    "process": ("dep-worker", "publish", 70, 90, Span.SPAN_KIND_CONSUMER, {}),
    "render": ("dep-web", "GET /", 91, 99, Span.SPAN_KIND_INTERNAL, {}),
}
# (client, server, connection type, calls, errors), sorted: in trace 0 the API's server span fails, in trace 1
# the charge.
EDGES = [
    ("dep-api", "dep-worker", "messaging_system", 3, 0),
    ("dep-api", "orders", "database", 3, 0),
    ("dep-api", "payments.example.com", "virtual_node", 3, 1),
    ("dep-api", "sessions", "database", 3, 0),
    ("dep-web", "dep-api", "", 3, 1),
]


def send_topology(server, t0: int) -> None:
    for i in range(TRACES):
        trace_id = rand_trace_id()
        ids = {name: rand_span_id() for name in TOPOLOGY}
        by_service: dict[str, list] = {}
        for name, (service, parent, start, end, kind, attrs) in TOPOLOGY.items():
            span = simple_span(trace_id, ids[name], name=name, parent=ids[parent] if parent else b"",
                               start=t0 + i * 1000 * MS + start * MS, duration=(end - start) * MS, kind=kind,
                               attrs=attrs)
            if (i, name) in ((0, "GET /api"), (1, "charge")):
                span.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR))
            by_service.setdefault(service, []).append(span)
        # Each service sends its own spans, as separate processes would.
        for service, spans in by_service.items():
            assert_full_success(server.export_http_proto(request_of(spans, service=service)))


@pytest.fixture
def graph_server(server_factory, tmp_path):
    config = tmp_path / "clew.toml"
    config.write_text('[span_metrics.service_graph]\nwait = "1s"\n')
    server = server_factory("graph", extra_args=["--config", str(config)])
    t0 = (time.time_ns() // MS - 120_000) * MS  # two minutes ago, on a millisecond
    send_topology(server, t0)
    return server, t0


def test_live_service_graph_metrics(graph_server):
    server, _ = graph_server
    time.sleep(1.5)  # past the wait: the external call's server side is known never to come
    text = requests.get(f"{server.telemetry_url}/metrics", timeout=10).text
    fams = {f.name: f for f in text_string_to_metric_families(text)}

    def value(family, client, server_name, connection):
        labels = {"client": client, "server": server_name}
        if connection:
            labels["connection_type"] = connection
        found = [s for s in fams[family].samples if s.labels == labels and s.name.endswith("_total")]
        return found[0].value if found else 0

    for client, server_name, connection, calls, errors in EDGES:
        assert value("traces_service_graph_request", client, server_name, connection) == calls, (client, server_name)
        assert value("traces_service_graph_request_failed", client, server_name, connection) == errors
    edges = {(s.labels["client"], s.labels["server"]) for s in fams["traces_service_graph_request"].samples}
    assert edges == {(c, s) for c, s, *_ in EDGES}
    # web → api: server side 78 ms, client side 89 ms, both in (50 ms, 100 ms].
    for side, le in (("server", "0.05"), ("server", "0.1"), ("client", "0.05"), ("client", "0.1")):
        bucket = [s for s in fams[f"traces_service_graph_request_{side}_seconds"].samples
                  if s.name.endswith("_bucket") and s.labels.get("le") == le
                  and (s.labels["client"], s.labels["server"]) == ("dep-web", "dep-api")]
        assert bucket[0].value == (0 if le == "0.05" else 3), (side, le)
        if le == "0.1":
            assert bucket[0].exemplar is not None and len(bucket[0].exemplar.labels["trace_id"]) == 32
    assert [s.value for s in fams["traces_service_graph_unpaired_spans"].samples] == [0]


def test_jaeger_dependencies(graph_server):
    server, t0 = graph_server
    end_ms = t0 // MS + 60_000
    r = requests.get(f"{server.query_url}/api/dependencies", params={"endTs": end_ms, "lookback": 3_600_000},
                     timeout=15)
    assert r.status_code == 200, r.text
    links = sorted((d["parent"], d["child"], d["callCount"]) for d in r.json()["data"])
    assert links == sorted((c, s, calls) for c, s, _, calls, _ in EDGES)
    # A range before the traffic holds nothing; a bad number is a 400.
    before = requests.get(f"{server.query_url}/api/dependencies",
                          params={"endTs": t0 // MS - 1, "lookback": 60_000}, timeout=15)
    assert before.json()["data"] == []
    assert requests.get(f"{server.query_url}/api/dependencies", params={"endTs": "x"}, timeout=15).status_code == 400


def test_zipkin_dependencies(graph_server):
    server, t0 = graph_server
    zipkin = f"http://127.0.0.1:{server.ports['zipkin']}"
    r = requests.get(f"{zipkin}/api/v2/dependencies",
                     params={"endTs": t0 // MS + 60_000, "lookback": 3_600_000}, timeout=15)
    assert r.status_code == 200, r.text
    links = sorted((d["parent"], d["child"], d["callCount"], d.get("errorCount", 0)) for d in r.json())
    assert links == sorted((c, s, calls, errors) for c, s, _, calls, errors in EDGES)
    missing = requests.get(f"{zipkin}/api/v2/dependencies", timeout=15)
    assert missing.status_code == 400 and "endTs" in missing.text


def test_native_dependencies_with_latency(graph_server):
    server, t0 = graph_server
    r = requests.get(f"{server.query_url}/api/v1/dependencies",
                     params={"start": t0 // 1_000_000_000 - 1, "end": t0 // 1_000_000_000 + 60}, timeout=15)
    assert r.status_code == 200, r.text
    edges = r.json()["edges"]
    assert [(e["client"], e["server"], e["connectionType"], e["calls"], e["errors"]) for e in edges] == EDGES
    web_api = edges[-1]
    assert web_api["clientSeconds"]["p50"] == pytest.approx(0.089, rel=0.01)
    assert web_api["serverSeconds"]["p99"] == pytest.approx(0.078, rel=0.01)
    assert edges[1]["serverSeconds"] is None  # a database has no server side
    # Only the first trace's calls start in the first half second.
    first = requests.get(f"{server.query_url}/api/v1/dependencies",
                         params={"start": t0 / 1e9, "end": (t0 + 500 * MS) / 1e9}, timeout=15).json()["edges"]
    assert [e["calls"] for e in first] == [1] * len(EDGES)
    bad = requests.get(f"{server.query_url}/api/v1/dependencies", params={"start": "later"}, timeout=15)
    assert bad.status_code == 400 and "start" in bad.json()["error"]["message"]


# -- the demo shop: real OpenTelemetry SDK traces over ten services --------------------------------------------


@pytest.fixture(scope="module")
def shop(clew_bin, tmp_path_factory, module_server_factory):
    from test_demo import run_demo

    return run_demo(clew_bin, tmp_path_factory.mktemp("deps-demo"), module_server_factory, "deps", 6, ctrl_c=True)


def test_the_demo_shops_graph(shop):
    import re

    (orders,) = re.findall(r"Sent (\d+) orders: \1 succeeded, 0 failed", shop.stdout)
    orders = int(orders)
    now = int(time.time())
    r = requests.get(f"{shop.server.query_url}/api/v1/dependencies", params={"start": now - 3600, "end": now + 60},
                     timeout=60)
    assert r.status_code == 200, r.text
    edges = {(e["client"], e["server"], e["connectionType"]): (e["calls"], e["errors"]) for e in r.json()["edges"]}
    # Every order calls auth, cart and checkout once; checkout reserves stock, pays and queues the shipment once.
    for pair in [("frontend", "auth", ""), ("frontend", "cart", ""), ("frontend", "checkout", ""),
                 ("checkout", "inventory", ""), ("checkout", "payment", ""), ("payment", "payment-provider", ""),
                 ("checkout", "shipping", "messaging_system")]:
        assert edges.get(pair) == (orders, 0), (pair, edges.get(pair), orders)
    # The inventory's SQLite queries: a database node named by db.namespace.
    calls, errors = edges[("inventory", "shop", "database")]
    assert calls >= orders and errors == 0
    # Jaeger's view of the same range: the same pairs and counts, connection types summed.
    jaeger = requests.get(f"{shop.server.query_url}/api/dependencies",
                          params={"endTs": (now + 60) * 1000, "lookback": 3_660_000}, timeout=60).json()["data"]
    summed: dict = {}
    for (client, server_name, _), (calls, _) in edges.items():
        summed[(client, server_name)] = summed.get((client, server_name), 0) + calls
    assert {(d["parent"], d["child"]): d["callCount"] for d in jaeger} == summed
