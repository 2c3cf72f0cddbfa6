"""Shared helpers for the Clew end-to-end tests.

- ClewServer: starts/stops/SIGKILLs a `clew serve` process on free loopback ports.
- OTLP helpers: build requests with the generated protobuf classes, encode/decode
  OTLP/JSON (hex ids, int64 as strings), send over OTLP/HTTP and raw gRPC, read a
  trace back and normalise it for structural comparison.
- Zipkin protobuf classes (ListOfSpans), built from a descriptor at import time.
- Prometheus text parsing.
"""

from __future__ import annotations

import base64
import copy
import gzip
import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import grpc
import requests
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

ExportRequest = trace_service_pb2.ExportTraceServiceRequest
ExportResponse = trace_service_pb2.ExportTraceServiceResponse
TracesData = trace_pb2.TracesData
ResourceSpans = trace_pb2.ResourceSpans
ScopeSpans = trace_pb2.ScopeSpans
Span = trace_pb2.Span
Status = trace_pb2.Status
KeyValue = common_pb2.KeyValue
AnyValue = common_pb2.AnyValue
ArrayValue = common_pb2.ArrayValue
KeyValueList = common_pb2.KeyValueList
InstrumentationScope = common_pb2.InstrumentationScope
Resource = resource_pb2.Resource
RpcStatus = status_pb2.Status

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
READY_TIMEOUT_S = 20.0
PORT_FLAGS = {
    "grpc": "--otlp-grpc-port",
    "http": "--otlp-http-port",
    "zipkin": "--zipkin-port",
    "query": "--query-port",
    "tempo": "--tempo-port",
    "sampling": "--sampling-port",
    "telemetry": "--telemetry-port",
}


# --------------------------------------------------------------------------------------
# Server process
# --------------------------------------------------------------------------------------


def free_ports(n: int) -> list[int]:
    """Bind n sockets to port 0 at once (so the ports are distinct), read them, close."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class ServerStartError(AssertionError):
    pass


class ClewServer:
    """One `clew serve` process (restartable on the same data dir; new ports each start)."""

    def __init__(self, binary: str, workdir: Path, name: str = "clew", extra_args=(), data_dir=None, env=None):
        self.binary = str(binary)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.extra_args = [str(a) for a in extra_args]
        self.env = dict(env or {})  # extra environment variables for the process
        self.data_dir = Path(data_dir) if data_dir else self.workdir / "data"
        self.log_path = self.workdir / f"{name}.log"
        self.proc: subprocess.Popen | None = None
        self.ports: dict[str, int] = {}
        self.starts = 0
        self.last_ready_seconds: float | None = None
        self.expected_dead = False
        self._channel: grpc.Channel | None = None
        self._session = requests.Session()

    # -- lifecycle ---------------------------------------------------------------------

    def command(self) -> list[str]:
        args = [self.binary, "serve", "--data-dir", str(self.data_dir), "--listen", "127.0.0.1"]
        for key, flag in PORT_FLAGS.items():
            args += [flag, str(self.ports[key])]
        return args + self.extra_args

    def start(self, timeout: float = READY_TIMEOUT_S) -> "ClewServer":
        """Spawn and wait until /ready answers 200 (fails the test otherwise)."""
        for attempt in range(3):
            log_size = self.log_path.stat().st_size if self.log_path.exists() else 0
            t0 = self.spawn()
            try:
                self.wait_ready(timeout, t0)
                return self
            except ServerStartError:
                # Another process may have taken one of the free ports between our probe and
                # the server's bind: retry with new ports, but only for that reason.
                new_log = self.log_path.read_bytes()[log_size:].decode(errors="replace")
                if attempt == 2 or "in use" not in new_log.lower():
                    raise
        raise AssertionError("unreachable")

    def spawn(self) -> float:
        """Start the process without waiting for readiness; returns the start instant."""
        assert self.proc is None or self.proc.poll() is not None, "server already running"
        self._close_channel()
        self.ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS))))
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLEW_")}
        env.setdefault("RUST_BACKTRACE", "1")
        env["NO_COLOR"] = "1"
        env.update(self.env)
        cmd = self.command()
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start #{self.starts + 1}: {' '.join(cmd)}\n".encode())
        log = open(self.log_path, "ab")
        t0 = time.monotonic()
        try:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=self.workdir, env=env
            )
        finally:
            log.close()
        self.starts += 1
        self.expected_dead = False
        return t0

    def wait_ready(self, timeout: float, t0: float) -> None:
        url = f"{self.telemetry_url}/ready"
        deadline = t0 + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                raise ServerStartError(
                    f"clew serve exited with {rc} before becoming ready\n{self.log_tail()}"
                )
            try:
                r = requests.get(url, timeout=1)
                if r.status_code == 200:
                    self.last_ready_seconds = time.monotonic() - t0
                    return
                last = f"HTTP {r.status_code}"
            except requests.RequestException as e:
                last = type(e).__name__
            time.sleep(0.02)
        self.kill()
        raise ServerStartError(
            f"clew serve not ready within {timeout}s (last /ready: {last})\n{self.log_tail()}"
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no chance to flush or clean up."""
        self.expected_dead = True
        self._close_channel()
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        self.expected_dead = True
        self._close_channel()
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def _close_channel(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return f"--- last {lines} lines of {self.log_path} ---\n" + "\n".join(text.splitlines()[-lines:])

    # -- addresses ---------------------------------------------------------------------

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['http']}"

    @property
    def traces_url(self) -> str:
        return f"{self.http_url}/v1/traces"

    @property
    def zipkin_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['zipkin']}/api/v2/spans"

    @property
    def query_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['query']}"

    @property
    def tempo_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['tempo']}"

    @property
    def sampling_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['sampling']}"

    @property
    def telemetry_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['telemetry']}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.ports['grpc']}"

    def channel(self) -> grpc.Channel:
        if self._channel is None:
            self._channel = grpc.insecure_channel(self.grpc_target)
        return self._channel

    # -- client calls ------------------------------------------------------------------

    def post_traces(self, body: bytes, content_type: str | None = PROTOBUF, tenant: str | None = None,
                    gzip_body: bool = False, headers: dict | None = None, method: str = "POST",
                    timeout: float = 15) -> requests.Response:
        h = dict(headers or {})
        if content_type is not None:
            h["Content-Type"] = content_type
        if tenant is not None:
            h["X-Scope-OrgID"] = tenant
        if gzip_body:
            body = gzip.compress(body)
            h["Content-Encoding"] = "gzip"
        # A new connection per request, so one test's rejected request can't break the next
        # request through a reused keep-alive connection (test_bad_input tests that separately).
        return requests.request(method, self.traces_url, data=body, headers=h, timeout=timeout)

    def export_http_proto(self, req: ExportRequest, tenant: str | None = None, gzip_body: bool = False) -> ExportResponse:
        r = self.post_traces(req.SerializeToString(), PROTOBUF, tenant=tenant, gzip_body=gzip_body)
        assert r.status_code == 200, f"OTLP/HTTP protobuf export: HTTP {r.status_code}: {r.content[:500]!r}"
        assert r.headers.get("Content-Type", "").startswith(PROTOBUF), r.headers
        return ExportResponse.FromString(r.content)

    def export_http_json(self, doc: dict | str, tenant: str | None = None,
                         content_type: str = JSON) -> ExportResponse:
        body = doc if isinstance(doc, str) else json.dumps(doc)
        r = self.post_traces(body.encode(), content_type, tenant=tenant)
        assert r.status_code == 200, f"OTLP/HTTP JSON export: HTTP {r.status_code}: {r.text[:500]}"
        assert r.headers.get("Content-Type", "").startswith(JSON), r.headers
        return json_format.Parse(r.text, ExportResponse())

    def grpc_export_raw(self, payload: bytes, tenant: str | None = None, compression=None,
                        timeout: float = 15) -> ExportResponse:
        call = self.channel().unary_unary(
            EXPORT_METHOD,
            request_serializer=lambda b: b,
            response_deserializer=ExportResponse.FromString,
        )
        metadata = [("x-scope-orgid", tenant)] if tenant is not None else None
        return call(payload, timeout=timeout, metadata=metadata, compression=compression)

    def export_grpc(self, req: ExportRequest, tenant: str | None = None, compression=None) -> ExportResponse:
        return self.grpc_export_raw(req.SerializeToString(), tenant=tenant, compression=compression)

    def get_trace(self, trace_id, tenant: str | None = None) -> requests.Response:
        tid = trace_id.hex() if isinstance(trace_id, bytes) else trace_id
        headers = {"X-Scope-OrgID": tenant} if tenant is not None else {}
        return self._session.get(f"{self.query_url}/api/v1/traces/{tid}", headers=headers, timeout=15)

    def fetch_trace(self, trace_id, tenant: str | None = None) -> TracesData:
        r = self.get_trace(trace_id, tenant)
        tid = trace_id.hex() if isinstance(trace_id, bytes) else trace_id
        assert r.status_code == 200, f"GET trace {tid} (tenant {tenant!r}): HTTP {r.status_code}: {r.text[:300]}"
        return otlp_json_to_proto(r.json(), TracesData)

    def metrics_text(self) -> str:
        r = requests.get(f"{self.telemetry_url}/metrics", timeout=10)
        assert r.status_code == 200, f"/metrics: HTTP {r.status_code}"
        return r.text


def assert_full_success(resp: ExportResponse, what: str = "export") -> None:
    assert not resp.HasField("partial_success") or resp.partial_success.rejected_spans == 0, (
        f"{what}: unexpected partial success: {resp.partial_success}"
    )


# --------------------------------------------------------------------------------------
# Building OTLP data
# --------------------------------------------------------------------------------------


def rand_trace_id() -> bytes:
    while True:
        b = os.urandom(16)
        if any(b):
            return b


def rand_span_id() -> bytes:
    while True:
        b = os.urandom(8)
        if any(b):
            return b


def av(v) -> AnyValue:
    """Python value -> AnyValue. bytes->bytes, bool->bool, int->int, float->double,
    list->array, dict->kvlist, None->empty AnyValue."""
    if v is None:
        return AnyValue()
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    if isinstance(v, str):
        return AnyValue(string_value=v)
    if isinstance(v, (bytes, bytearray)):
        return AnyValue(bytes_value=bytes(v))
    if isinstance(v, (list, tuple)):
        return AnyValue(array_value=ArrayValue(values=[av(x) for x in v]))
    if isinstance(v, dict):
        return AnyValue(kvlist_value=KeyValueList(values=kvs(v)))
    raise TypeError(type(v))


def kvs(d: dict) -> list[KeyValue]:
    return [KeyValue(key=k, value=av(v)) for k, v in d.items()]


def simple_span(trace_id: bytes, span_id: bytes | None = None, name: str = "op", parent: bytes = b"",
                start: int = 1_700_000_000_000_000_000, duration: int = 1_000_000, attrs: dict | None = None,
                kind: int = Span.SPAN_KIND_INTERNAL) -> Span:
    return Span(
        trace_id=trace_id,
        span_id=span_id if span_id is not None else rand_span_id(),
        parent_span_id=parent,
        name=name,
        kind=kind,
        start_time_unix_nano=start,
        end_time_unix_nano=start + duration,
        attributes=kvs(attrs or {}),
    )


def request_of(spans, service: str = "e2e-svc", scope: str = "e2e-scope") -> ExportRequest:
    return ExportRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=kvs({"service.name": service})),
                scope_spans=[ScopeSpans(scope=InstrumentationScope(name=scope), spans=list(spans))],
            )
        ]
    )


def simple_request(n_spans: int = 1, trace_id: bytes | None = None, service: str = "e2e-svc",
                   name_prefix: str = "op") -> tuple[bytes, ExportRequest]:
    tid = trace_id or rand_trace_id()
    spans = []
    root = rand_span_id()
    for i in range(n_spans):
        spans.append(
            simple_span(tid, root if i == 0 else None, name=f"{name_prefix}-{i}", parent=b"" if i == 0 else root,
                        start=1_700_000_000_000_000_000 + i * 1000, attrs={"i": i, "s": f"v{i}"})
        )
    return tid, request_of(spans, service=service)


# --------------------------------------------------------------------------------------
# OTLP/JSON encoding (hex ids) and decoding
# --------------------------------------------------------------------------------------

_SPAN_ID_FIELDS = ("traceId", "spanId", "parentSpanId")
_HEX_RE = re.compile(r"^(?:[0-9a-fA-F]{2})*$")


def _map_span_ids(doc: dict, fn) -> dict:
    doc = copy.deepcopy(doc)
    for rs in doc.get("resourceSpans") or []:
        for ss in rs.get("scopeSpans") or []:
            for sp in ss.get("spans") or []:
                for f in _SPAN_ID_FIELDS:
                    if f in sp:
                        sp[f] = fn(sp[f], f)
                for link in sp.get("links") or []:
                    for f in ("traceId", "spanId"):
                        if f in link:
                            link[f] = fn(link[f], f"link.{f}")
    return doc


def proto_to_otlp_json(msg) -> dict:
    """OTLP/JSON per the spec: lowerCamelCase, hex ids, int64 as strings, enums as ints,
    bytes values as base64 (json_format does all but the ids; we fix those)."""
    d = json_format.MessageToDict(msg, use_integers_for_enums=True)
    return _map_span_ids(d, lambda v, _f: base64.b64decode(v).hex())


def otlp_json_to_proto(doc: dict, cls=TracesData):
    """Parse OTLP/JSON (as returned by the query API) into protobuf; ids must be hex."""

    def hex_to_b64(v, field):
        assert isinstance(v, str) and _HEX_RE.match(v), f"{field} is not a hex string: {v!r}"
        return base64.b64encode(bytes.fromhex(v)).decode()

    return json_format.ParseDict(_map_span_ids(doc, hex_to_b64), cls())


def check_json_conventions(doc) -> None:
    """OTLP/JSON: int64/fixed64 fields are decimal strings; enums are integers."""
    problems = []

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                p = f"{path}.{k}"
                if k in ("startTimeUnixNano", "endTimeUnixNano", "timeUnixNano", "intValue"):
                    if not (isinstance(v, str) and re.fullmatch(r"-?\d+", v)):
                        problems.append(f"{p} should be a decimal string, got {v!r}")
                elif k == "kind" and path.endswith("]") and "spans" in path:
                    if not isinstance(v, int) or isinstance(v, bool):
                        problems.append(f"{p} should be an integer enum, got {v!r}")
                elif k == "code" and path.endswith(".status"):
                    if not isinstance(v, int) or isinstance(v, bool):
                        problems.append(f"{p} should be an integer enum, got {v!r}")
                walk(v, p)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}[{i}]")

    walk(doc, "$")
    assert not problems, "OTLP/JSON convention violations:\n" + "\n".join(problems[:20])


# --------------------------------------------------------------------------------------
# Normalisation for comparison
# --------------------------------------------------------------------------------------

_KV_NAME = "opentelemetry.proto.common.v1.KeyValue"


def _sort_kvs(msg) -> None:
    """Attributes (and kvlist values) are maps: order is not significant, sort by key."""
    for fd, val in msg.ListFields():
        if fd.message_type is None:
            continue
        if fd.is_repeated:
            for m in val:
                _sort_kvs(m)
            if fd.message_type.full_name == _KV_NAME:
                items = sorted((copy.deepcopy(m) for m in val), key=lambda kv: kv.key)
                del val[:]
                val.extend(items)
        else:
            _sort_kvs(val)


def _canon(msg):
    m = copy.deepcopy(msg)
    _sort_kvs(m)
    return m


def flatten(data) -> dict:
    """TracesData / ExportTraceServiceRequest -> {(trace_id_hex, span_id_hex): (resource,
    resource_schema_url, scope, scope_schema_url, span)} with attributes sorted; independent
    of how spans are grouped into ResourceSpans/ScopeSpans."""
    out = {}
    for rs in data.resource_spans:
        res = _canon(rs.resource)
        for ss in rs.scope_spans:
            scope = _canon(ss.scope)
            for sp in ss.spans:
                key = (sp.trace_id.hex(), sp.span_id.hex())
                assert key not in out, f"span {key} appears twice"
                out[key] = (res, rs.schema_url, scope, ss.schema_url, _canon(sp))
    return out


def _readable(entry) -> dict:
    res, rurl, scope, surl, sp = entry
    f = lambda m: json_format.MessageToDict(m, preserving_proto_field_name=True, use_integers_for_enums=True)
    return {"resource": f(res), "resource_schema_url": rurl, "scope": f(scope), "scope_schema_url": surl, "span": f(sp)}


def assert_same_spans(got, expected, only_trace: bytes | None = None) -> None:
    """Every span of `expected` (optionally only those of one trace) is in `got` with the
    identical resource, scope, schema urls and span; `got` has no other spans."""
    g = flatten(got)
    e = flatten(expected)
    if only_trace is not None:
        e = {k: v for k, v in e.items() if k[0] == only_trace.hex()}
    assert sorted(g) == sorted(e), f"span sets differ:\n got      {sorted(g)}\n expected {sorted(e)}"
    for key in e:
        if g[key] != e[key]:
            assert _readable(g[key]) == _readable(e[key]), f"span {key} differs"
            raise AssertionError(f"span {key} differs (protobuf inequality):\n{g[key]}\nvs\n{e[key]}")


def anyvalue_py(v: AnyValue):
    """AnyValue -> (type, python value) to compare types explicitly."""
    which = v.WhichOneof("value")
    if which == "array_value":
        return ("array", [anyvalue_py(x) for x in v.array_value.values])
    if which == "kvlist_value":
        return ("kvlist", {kv.key: anyvalue_py(kv.value) for kv in v.kvlist_value.values})
    if which is None:
        return ("empty", None)
    return (which.replace("_value", ""), getattr(v, which))


def attrs_py(kv_list) -> dict:
    return {kv.key: anyvalue_py(kv.value) for kv in kv_list}


def all_spans(data) -> list[tuple]:
    """[(resource, scope, span)] in document order."""
    return [(rs.resource, ss.scope, sp) for rs in data.resource_spans for ss in rs.scope_spans for sp in ss.spans]


# --------------------------------------------------------------------------------------
# Error bodies
# --------------------------------------------------------------------------------------


def error_message(resp: requests.Response, request_was_protobuf: bool) -> str:
    """Parse a google.rpc.Status error body (protobuf if the request was protobuf, else JSON)
    and return its message (asserting it's non-empty)."""
    ctype = resp.headers.get("Content-Type", "")
    if request_was_protobuf:
        assert ctype.startswith(PROTOBUF), f"error body content type {ctype!r}, expected {PROTOBUF} (body {resp.content[:200]!r})"
        st = RpcStatus.FromString(resp.content)
        msg = st.message
    else:
        assert ctype.startswith(JSON), f"error body content type {ctype!r}, expected {JSON} (body {resp.content[:200]!r})"
        body = resp.json()
        assert isinstance(body, dict) and "message" in body, f"error body is not a google.rpc.Status: {body!r}"
        msg = body["message"]
    assert isinstance(msg, str) and msg.strip(), f"empty error message (HTTP {resp.status_code})"
    return msg


def mentions(msg: str, *words: str) -> bool:
    low = msg.lower()
    return any(w.lower() in low for w in words)


# --------------------------------------------------------------------------------------
# Zipkin protobuf (zipkin.proto3), built from a descriptor
# --------------------------------------------------------------------------------------


def _zipkin_classes():
    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="clew_e2e_zipkin.proto", package="zipkin.proto3", syntax="proto3")

    def msg(name, fields):
        m = fdp.message_type.add(name=name)
        for fname, num, ftype, label, type_name in fields:
            f = m.field.add(name=fname, number=num, type=ftype, label=label)
            if type_name:
                f.type_name = type_name
        return m

    OPT, REP = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    msg("Endpoint", [
        ("service_name", 1, F.TYPE_STRING, OPT, None),
        ("ipv4", 2, F.TYPE_BYTES, OPT, None),
        ("ipv6", 3, F.TYPE_BYTES, OPT, None),
        ("port", 4, F.TYPE_INT32, OPT, None),
    ])
    msg("Annotation", [
        ("timestamp", 1, F.TYPE_FIXED64, OPT, None),
        ("value", 2, F.TYPE_STRING, OPT, None),
    ])
    span = msg("Span", [
        ("trace_id", 1, F.TYPE_BYTES, OPT, None),
        ("parent_id", 2, F.TYPE_BYTES, OPT, None),
        ("id", 3, F.TYPE_BYTES, OPT, None),
        ("kind", 4, F.TYPE_ENUM, OPT, ".zipkin.proto3.Span.Kind"),
        ("name", 5, F.TYPE_STRING, OPT, None),
        ("timestamp", 6, F.TYPE_FIXED64, OPT, None),
        ("duration", 7, F.TYPE_UINT64, OPT, None),
        ("local_endpoint", 8, F.TYPE_MESSAGE, OPT, ".zipkin.proto3.Endpoint"),
        ("remote_endpoint", 9, F.TYPE_MESSAGE, OPT, ".zipkin.proto3.Endpoint"),
        ("annotations", 10, F.TYPE_MESSAGE, REP, ".zipkin.proto3.Annotation"),
        ("tags", 11, F.TYPE_MESSAGE, REP, ".zipkin.proto3.Span.TagsEntry"),
        ("debug", 12, F.TYPE_BOOL, OPT, None),
        ("shared", 13, F.TYPE_BOOL, OPT, None),
    ])
    kind = span.enum_type.add(name="Kind")
    for n, v in (("SPAN_KIND_UNSPECIFIED", 0), ("CLIENT", 1), ("SERVER", 2), ("PRODUCER", 3), ("CONSUMER", 4)):
        kind.value.add(name=n, number=v)
    entry = span.nested_type.add(name="TagsEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=OPT)
    entry.field.add(name="value", number=2, type=F.TYPE_STRING, label=OPT)
    msg("ListOfSpans", [("spans", 1, F.TYPE_MESSAGE, REP, ".zipkin.proto3.Span")])

    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    get = lambda n: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"zipkin.proto3.{n}"))
    return get("ListOfSpans"), get("Span"), get("Endpoint"), get("Annotation")


ZipkinListOfSpans, ZipkinSpan, ZipkinEndpoint, ZipkinAnnotation = _zipkin_classes()


# --------------------------------------------------------------------------------------
# Prometheus text format
# --------------------------------------------------------------------------------------

_SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$")
_LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


class Metrics:
    def __init__(self, text: str):
        self.text = text
        self.samples: list[tuple[str, dict, float]] = []
        self.types: dict[str, str] = {}
        for line in text.splitlines():
            line = line.strip()
            if not line:
                continue
            if line.startswith("#"):
                parts = line.split()
                if len(parts) >= 4 and parts[1] == "TYPE":
                    self.types[parts[2]] = parts[3]
                continue
            m = _SAMPLE_RE.match(line)
            if not m:
                continue
            labels = dict(_LABEL_RE.findall(m.group(2) or ""))
            self.samples.append((m.group(1), labels, float(m.group(3))))

    def has(self, name: str) -> bool:
        return any(n == name for n, _, _ in self.samples)

    def sum(self, name: str, **labels) -> float:
        return sum(v for n, l, v in self.samples if n == name and all(l.get(k) == w for k, w in labels.items()))

    def by_label(self, name: str, label: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for n, l, v in self.samples:
            if n == name and label in l:
                out[l[label]] = out.get(l[label], 0.0) + v
        return out
