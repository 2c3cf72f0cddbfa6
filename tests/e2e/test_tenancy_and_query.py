"""Tenancy (X-Scope-OrgID / gRPC x-scope-orgid) and the query API's id handling."""

from __future__ import annotations

import json

from helpers import (
    all_spans,
    assert_full_success,
    assert_same_spans,
    proto_to_otlp_json,
    rand_span_id,
    rand_trace_id,
    request_of,
    simple_request,
    simple_span,
)


def test_same_trace_id_is_separate_per_tenant(server):
    tid = rand_trace_id()
    alpha = request_of([simple_span(tid, name="alpha-span", attrs={"who": "alpha"})], service="alpha-svc")
    beta = request_of([simple_span(tid, name="beta-span-1"), simple_span(tid, name="beta-span-2")],
                      service="beta-svc")
    gamma = request_of([simple_span(tid, name="gamma-span")], service="gamma-svc")
    assert_full_success(server.export_http_proto(alpha, tenant="alpha"))
    assert_full_success(server.export_grpc(beta, tenant="beta"))
    r = server.post_traces(json.dumps(proto_to_otlp_json(gamma)).encode(), "application/json", tenant="gamma")
    assert r.status_code == 200, r.text

    assert_same_spans(server.fetch_trace(tid, tenant="alpha"), alpha)
    assert_same_spans(server.fetch_trace(tid, tenant="beta"), beta)
    assert_same_spans(server.fetch_trace(tid, tenant="gamma"), gamma)
    assert server.get_trace(tid).status_code == 404, "no header = single-tenant, which has no such trace"
    assert server.get_trace(tid, tenant="delta").status_code == 404
    # Tenant ids are case-sensitive strings, not normalised.
    assert server.get_trace(tid, tenant="ALPHA").status_code == 404


def test_no_header_means_single_tenant(server):
    tid, req = simple_request(3)
    assert_full_success(server.export_http_proto(req))
    tid2, req2 = simple_request(2)
    assert_full_success(server.export_grpc(req2))
    for t, rq in ((tid, req), (tid2, req2)):
        assert_same_spans(server.fetch_trace(t), rq)
        assert_same_spans(server.fetch_trace(t, tenant="single-tenant"), rq)
        assert server.get_trace(t, tenant="other").status_code == 404
    # And writing with the explicit default tenant is the same tenant.
    tid3, req3 = simple_request(1)
    assert_full_success(server.export_http_proto(req3, tenant="single-tenant"))
    assert_same_spans(server.fetch_trace(tid3), req3)


def test_tenancy_survives_restart(server):
    tid = rand_trace_id()
    a = request_of([simple_span(tid, name="a")])
    b = request_of([simple_span(tid, name="b")])
    assert_full_success(server.export_http_proto(a, tenant="tenant-a"))
    assert_full_success(server.export_http_proto(b, tenant="tenant-b"))
    server.kill()
    server.start()
    assert_same_spans(server.fetch_trace(tid, tenant="tenant-a"), a)
    assert_same_spans(server.fetch_trace(tid, tenant="tenant-b"), b)
    assert server.get_trace(tid).status_code == 404


def test_trace_id_forms(server):
    tid = b"\x00" * 8 + rand_span_id()
    req = request_of([simple_span(tid, name="short-id")])
    assert_full_success(server.export_http_proto(req))
    long_hex = tid.hex()
    for form in (long_hex, long_hex.upper(), long_hex[16:], long_hex[16:].upper()):
        got = server.fetch_trace(form)
        assert [sp.name for _, _, sp in all_spans(got)] == ["short-id"], form


def test_malformed_and_absent_ids(server):
    for bad in ("xyz", "0" * 31, "g" * 32, "0" * 33, "1" * 15, "1" * 17, "0x" + "1" * 30, "12345678-1234-1234-1234-123456789012"):
        r = server.get_trace(bad)
        assert r.status_code == 400, f"{bad!r}: HTTP {r.status_code}"
    assert server.get_trace(rand_trace_id()).status_code == 404
    assert server.get_trace(rand_span_id().hex()).status_code == 404


def test_health_and_ready(server):
    import requests

    assert requests.get(f"{server.telemetry_url}/health", timeout=5).status_code == 200
    assert requests.get(f"{server.telemetry_url}/ready", timeout=5).status_code == 200
    assert server.last_ready_seconds is not None and server.last_ready_seconds < 1.0, (
        f"start to ready took {server.last_ready_seconds:.2f}s on an empty data dir"
    )


def test_sigterm_exits_cleanly_and_keeps_data(server):
    tid, req = simple_request(3)
    assert_full_success(server.export_grpc(req))
    server.proc.send_signal(15)
    rc = server.proc.wait(timeout=10)
    server.expected_dead = True
    assert rc == 0, f"clew serve exited with {rc} on SIGTERM"
    server.start()
    assert_same_spans(server.fetch_trace(tid), req)
