"""Bad input, one test per path. One server with small limits serves the whole module; after
every test the process must still be alive and a valid export must still round-trip."""

from __future__ import annotations

import gzip
import json
import socket

import grpc
import pytest
import requests

from helpers import (
    ExportRequest,
    JSON,
    PROTOBUF,
    Span,
    assert_full_success,
    assert_same_spans,
    error_message,
    mentions,
    proto_to_otlp_json,
    rand_span_id,
    rand_trace_id,
    request_of,
    simple_request,
    simple_span,
)

MAX_REQUEST_BYTES = 65536
MAX_ATTRS = 8
MAX_VALUE_BYTES = 1024
GARBAGE = b"\xff" * 40 + b"this is not a protobuf message" + bytes(range(256))


@pytest.fixture(scope="module")
def limited(module_server_factory):
    return module_server_factory(
        "limited",
        extra_args=["--max-request-bytes", MAX_REQUEST_BYTES, "--max-attributes-per-span", MAX_ATTRS,
                    "--max-attribute-value-bytes", MAX_VALUE_BYTES],
    )


@pytest.fixture
def srv(limited):
    assert limited.alive(), "server died in an earlier test"
    yield limited
    assert limited.alive(), "server process died"
    tid, req = simple_request(2, name_prefix="still-serving")
    assert_full_success(limited.export_http_proto(req), "valid export after bad input")
    assert_same_spans(limited.fetch_trace(tid), req)
    tid, req = simple_request(1, name_prefix="still-serving-grpc")
    assert_full_success(limited.export_grpc(req), "valid gRPC export after bad input")


def big_request(value_bytes: int) -> ExportRequest:
    """A valid request whose single span carries a long attribute value (no per-value limit
    applies before the size check; the value alone exceeds the request limit)."""
    return request_of([simple_span(rand_trace_id(), attrs={"big": "a" * value_bytes})])


def grpc_error(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as ei:
        call()
    return ei.value


# ----------------------------------------------------------------------------- undecodable


def test_http_protobuf_garbage(srv):
    r = srv.post_traces(GARBAGE, PROTOBUF)
    assert r.status_code == 400
    assert mentions(error_message(r, True), "protobuf", "decode")


def test_http_json_garbage(srv):
    for body in (b"{not json", b"\xff\xfe garbage", b"[1,2,3]", b'{"resourceSpans": 5}',
                 b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}'):
        r = srv.post_traces(body, JSON)
        assert r.status_code == 400, f"{body!r}: HTTP {r.status_code}"
        assert mentions(error_message(r, False), "json", "decode", "parse", "invalid"), body


def test_grpc_garbage(srv):
    err = grpc_error(lambda: srv.grpc_export_raw(GARBAGE))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err
    assert err.details()


def test_http_truncated_protobuf(srv):
    _, req = simple_request(5)
    body = req.SerializeToString()
    r = srv.post_traces(body[: len(body) // 2], PROTOBUF)
    assert r.status_code == 400
    assert mentions(error_message(r, True), "protobuf", "decode")


def test_grpc_truncated_protobuf(srv):
    _, req = simple_request(5)
    body = req.SerializeToString()
    err = grpc_error(lambda: srv.grpc_export_raw(body[: len(body) - 7]))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err


# ----------------------------------------------------------------------------- HTTP protocol


def test_wrong_content_type(srv):
    _, req = simple_request(1)
    for ctype in ("text/plain", "application/xml", "application/grpc", "multipart/form-data; boundary=x"):
        r = srv.post_traces(req.SerializeToString(), ctype)
        assert r.status_code == 415, f"{ctype}: HTTP {r.status_code}"
        assert mentions(error_message(r, False), "content type", "content-type", "media type"), ctype


def test_wrong_method(srv):
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        r = srv.post_traces(b"", PROTOBUF, method=method)
        assert r.status_code == 405, f"{method}: HTTP {r.status_code}"
        assert mentions(error_message(r, False), "method", method)


def test_content_type_parameters_accepted(srv):
    tid, req = simple_request(2)
    r = srv.post_traces(json.dumps(proto_to_otlp_json(req)).encode(), "application/json; charset=utf-8")
    assert r.status_code == 200, r.text
    tid2, req2 = simple_request(2)
    r = srv.post_traces(req2.SerializeToString(), "application/x-protobuf; proto=opentelemetry")
    assert r.status_code == 200
    assert_same_spans(srv.fetch_trace(tid), req)
    assert_same_spans(srv.fetch_trace(tid2), req2)


def test_empty_requests_succeed(srv):
    """OTLP: an empty request is a success."""
    r = srv.post_traces(b"", PROTOBUF)
    assert r.status_code == 200, r.content
    r = srv.post_traces(b"{}", JSON)
    assert r.status_code == 200, r.text
    srv.grpc_export_raw(b"")


def http_exchange(sock, request: bytes) -> tuple[int, dict, bytes]:
    """Send one HTTP/1.1 request on a raw socket and read one response (Content-Length framed)."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed before a response (got {data[:200]!r})")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed mid-response")
        body += chunk
    return status, headers, body


@pytest.mark.parametrize("case", ["415", "405", "413", "400-tenant"])
def test_early_rejection_keeps_keepalive_sane(srv, case):
    """A request rejected before its body is read: the server must either still read (drain)
    the body and keep the connection usable, or say `Connection: close`. Closing a keep-alive
    connection silently makes the client's next request on it fail (OTLP exporters reuse
    connections)."""
    body = b"\x0a" + b"x" * 100_000
    method, ctype, extra = "POST", PROTOBUF, ""
    expected = int(case[:3])
    if case == "415":
        ctype = "text/plain"
    elif case == "405":
        method = "PUT"
    elif case == "400-tenant":
        extra = "X-Scope-OrgID: bad/tenant\r\n"
    first = (f"{method} /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ctype}\r\n{extra}"
             f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    _, req = simple_request(1)
    valid = req.SerializeToString()
    second = (f"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {PROTOBUF}\r\n"
              f"Content-Length: {len(valid)}\r\n\r\n").encode() + valid
    with socket.create_connection(("127.0.0.1", srv.ports["http"]), timeout=10) as sock:
        status, headers, _ = http_exchange(sock, first)
        assert status == expected, f"HTTP {status}"
        if "close" in headers.get("connection", "").lower():
            return  # the client was told not to reuse the connection
        try:
            status2, _, _ = http_exchange(sock, second)
        except (ConnectionError, OSError) as e:
            raise AssertionError(
                f"HTTP {status} was sent without `Connection: close`, but the server then dropped the "
                f"keep-alive connection: the next request on it failed ({e})") from e
        assert status2 == 200


# ----------------------------------------------------------------------------- size limits


def test_http_oversize_body(srv):
    req = big_request(MAX_REQUEST_BYTES + 10_000)
    r = srv.post_traces(req.SerializeToString(), PROTOBUF)
    assert r.status_code == 413
    assert mentions(error_message(r, True), "limit", "large", "size")
    r = srv.post_traces(json.dumps(proto_to_otlp_json(req)).encode(), JSON)
    assert r.status_code == 413
    assert mentions(error_message(r, False), "limit", "large", "size")


def test_http_oversize_chunked_body(srv):
    """No Content-Length (chunked transfer encoding): the limit still applies while streaming."""
    body = big_request(MAX_REQUEST_BYTES + 10_000).SerializeToString()
    chunks = (body[i:i + 8192] for i in range(0, len(body), 8192))
    r = requests.post(srv.traces_url, data=chunks, headers={"Content-Type": PROTOBUF}, timeout=15)
    assert r.request.headers.get("Transfer-Encoding") == "chunked"
    assert r.status_code == 413, f"HTTP {r.status_code}"
    assert mentions(error_message(r, True), "limit", "large", "size")


def exact_size_request(size: int):
    """A valid request of exactly `size` bytes (padded through a span name, which no
    per-attribute limit applies to)."""
    tid = rand_trace_id()
    req = request_of([simple_span(tid, name="")])
    n = size - req.ByteSize()
    while True:
        req.resource_spans[0].scope_spans[0].spans[0].name = "n" * n
        diff = size - req.ByteSize()
        if diff == 0:
            return tid, req
        n += diff


@pytest.mark.parametrize("transport", ["http", "http-gzip", "grpc", "grpc-gzip"])
def test_request_size_limit_is_exact(srv, transport):
    """--max-request-bytes N: a (decompressed) body of N bytes is accepted, N+1 is not."""
    tid, at_limit = exact_size_request(MAX_REQUEST_BYTES)
    _, over = exact_size_request(MAX_REQUEST_BYTES + 1)
    gz = transport.endswith("gzip")
    if transport.startswith("http"):
        r = srv.post_traces(at_limit.SerializeToString(), PROTOBUF, gzip_body=gz)
        assert r.status_code == 200, f"{MAX_REQUEST_BYTES} bytes: HTTP {r.status_code}"
        r = srv.post_traces(over.SerializeToString(), PROTOBUF, gzip_body=gz)
        assert r.status_code == 413, f"{MAX_REQUEST_BYTES + 1} bytes: HTTP {r.status_code}"
        assert str(MAX_REQUEST_BYTES) in error_message(r, True), "the message should name the configured limit"
    else:
        comp = grpc.Compression.Gzip if gz else None
        assert_full_success(srv.export_grpc(at_limit, compression=comp))
        err = grpc_error(lambda: srv.export_grpc(over, compression=comp))
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err
        assert str(MAX_REQUEST_BYTES) in (err.details() or ""), (
            f"the message should name the configured limit {MAX_REQUEST_BYTES}: {err.details()!r}")
    assert_same_spans(srv.fetch_trace(tid), at_limit)


def test_grpc_oversize(srv):
    err = grpc_error(lambda: srv.export_grpc(big_request(MAX_REQUEST_BYTES + 10_000)))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err


def test_http_gzip_bomb(srv):
    body = gzip.compress(big_request(20 * 1024 * 1024).SerializeToString(), compresslevel=9)
    assert len(body) < 64 * 1024, len(body)
    r = srv.post_traces(body, PROTOBUF, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 413, f"{len(body)} gzip bytes expanding to 20 MiB: HTTP {r.status_code}"
    assert mentions(error_message(r, True), "limit", "large", "size")


def test_grpc_gzip_bomb(srv):
    err = grpc_error(lambda: srv.export_grpc(big_request(8 * 1024 * 1024), compression=grpc.Compression.Gzip))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err


def test_invalid_gzip(srv):
    _, req = simple_request(1)
    good = gzip.compress(req.SerializeToString())
    for body in (b"definitely not gzip", good[: len(good) // 2], good[:-4] + b"\x00\x00\x00\x00"):
        r = srv.post_traces(body, PROTOBUF, headers={"Content-Encoding": "gzip"})
        assert r.status_code == 400, f"{body[:20]!r}: HTTP {r.status_code}"
        assert mentions(error_message(r, True), "gzip", "decompress")


# ----------------------------------------------------------------------------- partial success


def rejected(resp) -> tuple[int, str]:
    return resp.partial_success.rejected_spans, resp.partial_success.error_message


def invalid_id_request() -> tuple[bytes, ExportRequest, list[Span]]:
    tid = rand_trace_id()
    root = rand_span_id()
    good = [
        simple_span(tid, root, name="good-root"),
        simple_span(tid, name="good-child", parent=root),
        simple_span(tid, name="good-child-2", parent=root),
    ]
    bad = [
        simple_span(tid[:15], name="bad: 15-byte trace id"),
        simple_span(b"\x00" * 16, name="bad: zero trace id"),
        simple_span(tid, b"\x00" * 8, name="bad: zero span id"),
        simple_span(tid, rand_span_id()[:7], name="bad: 7-byte span id"),
        simple_span(tid, name="bad: 4-byte parent", parent=b"\x01\x02\x03\x04"),
        simple_span(tid + b"\x01", name="bad: 17-byte trace id"),
    ]
    spans = [good[0], bad[0], good[1], *bad[1:], good[2]]
    return tid, request_of(spans), good


def test_invalid_ids_partial_success_http(srv):
    tid, req, good = invalid_id_request()
    n, msg = rejected(srv.export_http_proto(req))
    assert n == 6, msg
    assert mentions(msg, "trace"), msg  # the first problem is the 15-byte trace id
    assert_same_spans(srv.fetch_trace(tid), request_of(good))


def test_invalid_ids_partial_success_grpc(srv):
    tid, req, good = invalid_id_request()
    n, msg = rejected(srv.export_grpc(req))
    assert n == 6, msg
    assert mentions(msg, "trace"), msg
    assert_same_spans(srv.fetch_trace(tid), request_of(good))


def test_invalid_ids_partial_success_json(srv):
    """JSON can't express wrong-length ids as decodable ids, but all-zero ones it can."""
    tid = rand_trace_id()
    good = simple_span(tid, name="good")
    req = request_of([good, simple_span(tid, b"\x00" * 8, name="zero span id"),
                      simple_span(b"\x00" * 16, name="zero trace id"),
                      simple_span(tid, name="empty trace id")])
    doc = proto_to_otlp_json(req)
    spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans[1]["spanId"] = "0" * 16  # (already all-zero; explicit for clarity)
    spans[2]["traceId"] = "0" * 32
    spans[3]["traceId"] = ""  # OTLP/JSON: an empty string means absent -> not 16 bytes -> rejected
    spans[0]["parentSpanId"] = ""  # absent parent: a root span, valid
    r = srv.post_traces(json.dumps(doc).encode(), JSON)
    assert r.status_code == 200, r.text
    body = r.json()
    assert r.headers["Content-Type"].startswith(JSON)
    ps = body.get("partialSuccess", {})
    assert int(ps.get("rejectedSpans", 0)) == 3, body
    assert mentions(ps.get("errorMessage", ""), "span id", "span_id", "spanid"), body
    assert_same_spans(srv.fetch_trace(tid), request_of([good]))


def test_end_before_start(srv):
    tid = rand_trace_id()
    good = simple_span(tid, name="good")
    bad = simple_span(tid, name="backwards")
    bad.end_time_unix_nano = bad.start_time_unix_nano - 1
    n, msg = rejected(srv.export_grpc(request_of([bad, good])))
    assert n == 1, msg
    assert mentions(msg, "end", "time"), msg
    assert_same_spans(srv.fetch_trace(tid), request_of([good]))


def test_too_many_attributes(srv):
    tid = rand_trace_id()
    at_limit = simple_span(tid, name="at limit", attrs={f"a{i}": i for i in range(MAX_ATTRS)})
    over = simple_span(tid, name="over limit", attrs={f"a{i}": i for i in range(MAX_ATTRS + 1)})
    n, msg = rejected(srv.export_http_proto(request_of([at_limit, over])))
    assert n == 1, msg
    assert mentions(msg, "attribute"), msg
    assert_same_spans(srv.fetch_trace(tid), request_of([at_limit]))


def test_attribute_value_too_long(srv):
    tid = rand_trace_id()
    at_limit = simple_span(tid, name="at limit", attrs={"v": "a" * MAX_VALUE_BYTES})
    over = simple_span(tid, name="over limit", attrs={"v": "a" * (MAX_VALUE_BYTES + 1)})
    # The limit is in bytes: 342 three-byte characters are 1026 bytes.
    over_utf8 = simple_span(tid, name="over limit in bytes", attrs={"v": "€" * 342})
    n, msg = rejected(srv.export_http_proto(request_of([over, at_limit, over_utf8])))
    assert n == 2, msg
    assert mentions(msg, "attribute", "value"), msg
    assert_same_spans(srv.fetch_trace(tid), request_of([at_limit]))


def test_json_enum_names_accepted(srv):
    tid = rand_trace_id()
    sid = rand_span_id()
    doc = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "enum"}}]},
                              "scopeSpans": [{"scope": {"name": "s"}, "spans": [{
                                  "traceId": tid.hex().upper(), "spanId": sid.hex().upper(), "name": "enums",
                                  "kind": "SPAN_KIND_SERVER", "startTimeUnixNano": "1700000000000000000",
                                  "endTimeUnixNano": 1700000000000001000,
                                  "attributes": [{"key": "n", "value": {"intValue": 5}}],
                                  "status": {"code": "STATUS_CODE_ERROR", "message": "named"},
                                  "someUnknownField": {"ignored": True}}]}]}],
           "unknownTopLevel": 1}
    resp = srv.export_http_json(doc)
    assert resp.partial_success.rejected_spans == 0
    raw = srv.get_trace(tid).json()
    (sp,) = [s for rs in raw["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
    assert sp["kind"] == 2
    assert sp["status"] == {"code": 2, "message": "named"}
    assert sp["spanId"].lower() == sid.hex()
    assert sp["endTimeUnixNano"] == "1700000000000001000"
    assert sp["attributes"] == [{"key": "n", "value": {"intValue": "5"}}]


# ----------------------------------------------------------------------------- tenants

BAD_TENANTS = ["evil/tenant", "with space", "semi;colon", "a" * 151, "quote\"d", "ütf8"]


def test_bad_tenant_http(srv):
    _, req = simple_request(1)
    for tenant in BAD_TENANTS:
        r = srv.post_traces(req.SerializeToString(), PROTOBUF, headers={"X-Scope-OrgID": tenant.encode()})
        assert r.status_code == 400, f"tenant {tenant!r}: HTTP {r.status_code}"
        assert mentions(error_message(r, True), "tenant", "orgid"), tenant


def test_bad_tenant_grpc(srv):
    _, req = simple_request(1)
    for tenant in ["evil/tenant", "with space", "a" * 151]:
        err = grpc_error(lambda: srv.export_grpc(req, tenant=tenant))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, f"{tenant!r}: {err}"
        assert mentions(err.details() or "", "tenant", "orgid"), err.details()


def test_edge_tenants_accepted(srv):
    for tenant in ["Ab9!-_.*'()", "t" * 150]:
        tid, req = simple_request(1)
        assert_full_success(srv.export_http_proto(req, tenant=tenant))
        assert_same_spans(srv.fetch_trace(tid, tenant=tenant), req)
        assert srv.get_trace(tid).status_code == 404


# ----------------------------------------------------------------------------- zipkin


def test_zipkin_garbage(srv):
    cases = [
        (b"this is not json", "application/json"),
        (b'{"not": "an array"}', "application/json"),
        (b'[{"traceId": "xyz", "id": "1"}]', "application/json"),
        (GARBAGE, "application/x-protobuf"),
    ]
    for body, ctype in cases:
        r = requests.post(srv.zipkin_url, data=body, headers={"Content-Type": ctype}, timeout=10)
        assert r.status_code == 400, f"{body[:30]!r}: HTTP {r.status_code}"
        assert r.text.strip(), "400 without a message"
