"""Torn write-ahead log: the newest segment's last record is cut short (as if the machine died
mid-write). The server must start, keep every earlier trace, drop only the torn one, accept
new writes (into a new segment), and keep all of it across a further restart.

Layout (contract): <data-dir>/wal/{seq:020}.wal, each starting with b"CLEWWAL1", then
records [u32 LE length][u32 LE crc32c][payload], one per acknowledged request.
"""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path

import pytest

from helpers import assert_full_success, assert_same_spans, simple_request

MAGIC = b"CLEWWAL1"
SEGMENT_RE = re.compile(r"^(\d{20})\.wal$")
N_REQUESTS = 8


def segments(wal_dir: Path) -> list[Path]:
    assert wal_dir.is_dir(), f"no WAL directory at {wal_dir}"
    segs = sorted(p for p in wal_dir.iterdir() if SEGMENT_RE.match(p.name))
    assert segs, f"no WAL segments in {wal_dir}: {os.listdir(wal_dir)}"
    return segs


def records(path: Path) -> list[tuple[int, int]]:
    """[(offset, payload length)] of the records in a segment; the framing must account for
    every byte of the file."""
    data = path.read_bytes()
    assert data[:8] == MAGIC, f"{path.name} starts with {data[:8]!r}, expected {MAGIC!r}"
    out, pos = [], 8
    while pos < len(data):
        assert pos + 8 <= len(data), f"{path.name}: partial record header at {pos}"
        (length,) = struct.unpack_from("<I", data, pos)
        assert pos + 8 + length <= len(data), f"{path.name}: record at {pos} (len {length}) runs past EOF {len(data)}"
        out.append((pos, length))
        pos += 8 + length
    return out


@pytest.mark.parametrize("cut", ["payload", "header"])
def test_torn_last_record(server_factory, cut):
    srv = server_factory(f"torn-{cut}")
    sent = []
    for i in range(N_REQUESTS):
        tid, req = simple_request(3, name_prefix=f"torn-{i}")
        assert_full_success(srv.export_http_proto(req), f"request {i}")
        sent.append((tid, req))
    srv.kill()

    wal = srv.data_dir / "wal"
    before = segments(wal)
    counts = {p.name: len(records(p)) for p in before}
    assert sum(counts.values()) == N_REQUESTS, f"expected one record per acknowledged request: {counts}"
    newest = before[-1]
    recs = records(newest)
    assert recs, f"newest segment {newest.name} has no records: {counts}"
    last_off, last_len = recs[-1]
    size = newest.stat().st_size
    assert last_off + 8 + last_len == size
    # Cut a few bytes off the payload, or cut into the 8-byte record header.
    new_size = size - 3 if cut == "payload" else last_off + 5
    assert last_len > 3
    os.truncate(newest, new_size)

    srv.start()
    for i, (tid, req) in enumerate(sent[:-1]):
        try:
            assert_same_spans(srv.fetch_trace(tid), req)
        except AssertionError as e:
            raise AssertionError(f"trace of request {i} after recovery: {e}") from e
    r = srv.get_trace(sent[-1][0])
    assert r.status_code == 404, f"the torn request's trace must be absent, got HTTP {r.status_code}"

    tid_new, req_new = simple_request(4, name_prefix="after-recovery")
    assert_full_success(srv.export_http_proto(req_new))
    assert_same_spans(srv.fetch_trace(tid_new), req_new)
    after = segments(wal)
    newest_seq = int(SEGMENT_RE.match(newest.name).group(1))
    assert max(int(SEGMENT_RE.match(p.name).group(1)) for p in after) > newest_seq, (
        f"after a restart the server must write to a new segment: {[p.name for p in after]}"
    )

    srv.kill()
    srv.start()
    for tid, req in sent[:-1] + [(tid_new, req_new)]:
        assert_same_spans(srv.fetch_trace(tid), req)
    assert srv.get_trace(sent[-1][0]).status_code == 404
    # And it still takes writes.
    tid3, req3 = simple_request(2)
    assert_full_success(srv.export_http_proto(req3))
    assert_same_spans(srv.fetch_trace(tid3), req3)


@pytest.mark.parametrize("size", [0, 3])
def test_torn_segment_header(server_factory, size):
    """A crash right after a new segment file was created: the newest segment holds fewer
    than the 8 magic bytes. Earlier segments are intact, so nothing acknowledged is lost."""
    srv = server_factory(f"torn-magic-{size}")
    sent = [simple_request(2, name_prefix=f"m-{i}") for i in range(3)]
    for _tid, req in sent:
        assert_full_success(srv.export_http_proto(req))
    srv.kill()
    wal = srv.data_dir / "wal"
    last = segments(wal)[-1]
    seq = int(SEGMENT_RE.match(last.name).group(1))
    torn = wal / f"{seq + 1:020}.wal"
    torn.write_bytes(MAGIC[:size])
    srv.start()
    for tid, req in sent:
        assert_same_spans(srv.fetch_trace(tid), req)
    tid, req = simple_request(2)
    assert_full_success(srv.export_http_proto(req))
    srv.kill()
    srv.start()
    for tid, req in sent + [(tid, req)]:
        assert_same_spans(srv.fetch_trace(tid), req)
