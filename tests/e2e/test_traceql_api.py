"""TraceQL over the head and blocks: Clew's `/api/v1/traceql` and Tempo's `/api/search` (`q` and `tags`).

The data set is the search suite's: traces 1-4 in a first block, 5-8 and trace 12's root in a second,
9-11 and trace 12's child in the head. Trace n has a root `GET /item/n` (server, svc-{n%2}, n ms,
http.status_code 500 when n%3==0) and a child `SELECT` (client, service db, 10n ms, error when n%4==0).
Every query is checked against the exact expected trace ids, newest first.
"""

from __future__ import annotations

import pytest

from test_search import MS, N, expected, flush, hex_id, send, trace, tid, rs  # noqa: F401
from helpers import simple_span  # noqa: F401


@pytest.fixture(scope="module")
def data(module_server_factory):
    server = module_server_factory("traceql")
    for n in range(1, 5):
        send(server, trace(n))
    flush(server)
    for n in range(5, 9):
        send(server, trace(n))
    root12, child12 = trace(12)
    send(server, [root12])
    flush(server)
    for n in range(9, 12):
        send(server, trace(n))
    send(server, [child12])
    return server


def native(server, q, status=200, **params):
    r = server._session.get(f"{server.query_url}/api/v1/traceql", params={"q": q, "limit": 100, **params}, timeout=30)
    assert r.status_code == status, f"{q}: HTTP {r.status_code}: {r.text[:300]}"
    return r.json()


def ids(doc) -> list[str]:
    return [t["traceId"] for t in doc["traces"]]


CASES = [
    ('{ resource.service.name = "svc-1" }', lambda n: n % 2 == 1),
    ("{ span.http.status_code = 500 }", lambda n: n % 3 == 0),
    ("{ .http.status_code >= 500 && kind = server }", lambda n: n % 3 == 0),
    ("{ status = error }", lambda n: n % 4 == 0),
    ('{ name = "SELECT" && duration > 75ms }', lambda n: 10 * n > 75),
    ('{ name =~ "GET /item/1.*" }', lambda n: str(n).startswith("1")),
    ('{ name = "GET /item/3" } || { name = "GET /item/5" }', lambda n: n in (3, 5)),
    ('{ kind = server } > { status = error }', lambda n: n % 4 == 0),
    ('{ kind = server } !> { status = error }', lambda n: False),
    ('{ status = error } !< { kind = server }', lambda n: n % 4 != 0),
    ('{ status = error } < { .http.status_code = 500 }', lambda n: n % 12 == 0),
    ('{ } | count() > 1', lambda n: True),
    ('{ resource.service.name = "db" } | avg(duration) >= 100ms', lambda n: 10 * n >= 100),
    ('{ trace:rootService = "svc-0" }', lambda n: n % 2 == 0),
    ('{ resource.env = "dev" && span.region = "us-east" }', lambda n: n > 6 and n % 2 == 1),
    ("{ .nonexistent = 1 }", lambda n: False),
]


@pytest.mark.parametrize("q,pred", CASES, ids=[c[0] for c in CASES])
def test_queries_return_exactly_the_matching_traces_newest_first(data, q, pred):
    assert ids(native(data, q)) == expected(pred)


def test_result_shape_and_matched_spans(data):
    doc = native(data, '{ name = "SELECT" && status = error }', spss=1)
    first = doc["traces"][0]
    assert first["traceId"] == hex_id(12)
    assert first["rootServiceName"] == "svc-0" and first["rootSpanName"] == "GET /item/12"
    assert first["spanCount"] == 2 and first["errorCount"] == 1
    assert first["services"] == ["db", "svc-0"]
    assert first["durationNanos"] == str(121 * MS)
    (spanset,) = first["spanSets"]
    assert spanset["matched"] == 1
    (span,) = spanset["spans"]
    assert span["name"] == "SELECT" and span["durationNanos"] == str(120 * MS)
    assert span["spanID"] == bytes([2] * 7 + [12]).hex()


def test_limit_and_time_bounds(data):
    assert ids(native(data, "{ }", limit=3)) == expected(lambda n: True)[:3]
    base_s = 1_700_000_000
    got = ids(native(data, "{ }", start=str(base_s + 4), end=str(base_s + 8)))
    assert got == expected(lambda n: 4 <= n <= 8)


def test_parse_errors_say_where(data):
    doc = native(data, "{ .a = }", status=400)
    message = doc["error"]["message"]
    assert "col" in message, message
    native(data, "", status=400)
    native(data, "{ }", status=400, limit="0")


def tempo_search(server, status=200, **params):
    r = server._session.get(f"{server.tempo_url}/api/search", params=params, timeout=30)
    assert r.status_code == status, f"{params}: HTTP {r.status_code}: {r.text[:300]}"
    return r.json() if status == 200 else r.text


def test_tempo_search_shape(data):
    doc = tempo_search(data, q='{ span.http.status_code = 500 }', limit=2, spss=5)
    assert [t["traceID"] for t in doc["traces"]] == expected(lambda n: n % 3 == 0)[:2]
    t = doc["traces"][0]
    assert set(t) >= {"traceID", "rootServiceName", "rootTraceName", "startTimeUnixNano", "durationMs", "spanSets", "spanSet"}
    assert t["rootServiceName"] == "svc-0" and t["rootTraceName"] == "GET /item/12"
    assert t["startTimeUnixNano"] == str(1_700_000_000_000_000_000 + 12 * 1_000_000_000)
    assert t["durationMs"] == 121
    assert t["serviceStats"] == {"svc-0": {"spanCount": 1}, "db": {"spanCount": 1, "errorCount": 1}}
    span = t["spanSet"]["spans"][0]
    assert {"spanID", "startTimeUnixNano", "durationNanos"} <= set(span)
    assert {"key": "http.status_code", "value": {"intValue": "500"}} in span["attributes"]
    assert doc["metrics"]["inspectedTraces"] >= 2


def test_tempo_tag_search_and_durations(data):
    doc = tempo_search(data, tags="service.name=svc-1 http.status_code=500")
    assert [t["traceID"] for t in doc["traces"]] == expected(lambda n: n % 2 == 1 and n % 3 == 0)
    doc = tempo_search(data, tags='name="SELECT"', minDuration="80ms", maxDuration="101ms")
    assert [t["traceID"] for t in doc["traces"]] == expected(lambda n: 80 <= 10 * n + 1 <= 101)


@pytest.mark.parametrize("params", [{"q": "{ .a = }"}, {"limit": "x"}, {"minDuration": "fast"}, {"tags": "=x"},
                                    {"start": "200", "end": "100"}])
def test_tempo_search_bad_parameters(data, params):
    text = tempo_search(data, status=400, **params)
    assert text.strip()


def test_array_attributes_match_by_element_even_from_a_block(data):
    """The store narrows candidates with scalar comparisons; an array value must not be ruled out by them."""
    span = simple_span(tid(77), name="tagged", start=1_700_000_077_000_000_000, attrs={"tags": ["a", "b"]})
    send(data, [rs("arrays-svc", [span])], tenant="arrays")
    flush(data)
    for q, hit in [('{ span.tags = "b" }', True), ('{ .tags = "c" }', False), ('{ span.tags =~ "a|z" }', True)]:
        r = data._session.get(f"{data.query_url}/api/v1/traceql", params={"q": q},
                              headers={"X-Scope-OrgID": "arrays"}, timeout=30)
        assert r.status_code == 200, r.text
        assert ids(r.json()) == ([hex_id(77)] if hit else []), q


def test_structural_operators_on_a_deep_tree_split_between_a_block_and_the_head(server_factory, clew_bin):
    """A chain l0 → l1 → … → l7 whose upper half is in a block and lower half in the head."""
    server = server_factory("deep")
    t = tid(500)
    ids = [bytes([9] * 7 + [i]) for i in range(8)]
    spans = [simple_span(t, ids[i], name=f"l{i}", parent=ids[i - 1] if i else b"",
                         start=1_700_000_500_000_000_000 + i * MS, duration=(20 - i) * MS) for i in range(8)]
    send(server, [rs("deep-svc", spans[:4])])
    flush(server)
    send(server, [rs("deep-svc", spans[4:])])
    cases = [
        ('{ name = "l0" } >> { name = "l7" }', ["l7"]),
        ('{ name = "l3" } > { name = "l4" }', ["l4"]),
        ('{ name = "l2" } > { name = "l4" }', []),
        ('{ name = "l7" } << { name = "l1" }', ["l1"]),
        ('{ name = "l5" } < { name = "l4" }', ["l4"]),
        ('{ name = "l4" } &>> { name = "l6" }', ["l4", "l6"]),
        ('{ name =~ "l[0-3]" } !> { name =~ "l[1-7]" }', ["l5", "l6", "l7"]),
        ('{ } | count() = 8', [f"l{i}" for i in range(8)]),
    ]
    for q, names in cases:
        r = server._session.get(f"{server.query_url}/api/v1/traceql", params={"q": q, "spss": 100}, timeout=30)
        assert r.status_code == 200, r.text
        traces = r.json()["traces"]
        got = sorted(s["name"] for t_ in traces for ss in t_["spanSets"] for s in ss["spans"])
        assert got == names, q
    # The CLI prints the same trace as a table.
    import subprocess
    out = subprocess.run([clew_bin, "query", '{ name = "l0" } >> { name = "l7" }', "--server", server.query_url],
                         capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0].split()[:3] == ["START", "TRACE", "ID"] and len(lines) == 2, out.stdout
    assert hex_id(500) in lines[1] and "deep-svc" in lines[1] and "l0" in lines[1]
    bad = subprocess.run([clew_bin, "query", "{ .a = }", "--server", server.query_url],
                         capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert bad.returncode != 0 and "col" in bad.stderr, bad.stderr
