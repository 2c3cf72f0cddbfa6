"""Blocks in S3-compatible object storage: a real local S3 server (moto's `moto_server`) stands in for S3.

Spans cut into blocks under `s3://bucket/prefix` come back identical, also after a SIGKILL and restart (blocks
listed from the bucket, the log being empty), nothing is written outside the prefix, and storage that cannot
be reached fails the start with a clear message."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import pytest
import requests

from helpers import Metrics, assert_full_success, assert_same_spans, free_ports, rand_trace_id
from test_blocks import read
from test_roundtrip_handbuilt import rich_request, send

PREFIX = "some/prefix"
CUT_NOW = ["--block-cut-bytes", "1"]


class S3:
    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self.client = boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1",
            aws_access_key_id="test", aws_secret_access_key="test",
        )

    def env(self, endpoint: str | None = None) -> dict:
        """The environment `clew serve` reads its S3 settings from."""
        return {
            "AWS_ENDPOINT_URL": endpoint or self.endpoint,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-1",
        }

    def new_bucket(self) -> str:
        name = f"clew-{uuid.uuid4().hex[:12]}"
        self.client.create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> list[str]:
        keys = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys += [o["Key"] for o in page.get("Contents", [])]
        return keys


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    port = free_ports(1)[0]
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    script = Path(sys.executable).with_name("moto_server")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "moto.server"]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd + ["-H", "127.0.0.1", "-p", str(port)], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"moto_server exited with {proc.returncode}\n{log_path.read_text()[-3000:]}"
            try:
                requests.get(endpoint, timeout=1)
                break
            except requests.RequestException:
                assert time.monotonic() < deadline, f"moto_server not up in 30s\n{log_path.read_text()[-3000:]}"
                time.sleep(0.05)
        yield S3(endpoint)
    finally:
        proc.kill()
        proc.wait(timeout=10)


def wait_for_s3_cut(server, s3: S3, bucket: str, timeout=30.0) -> list[str]:
    """Until the head is empty and a block's `meta.json` is in the bucket under the prefix."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        metas = [k for k in s3.keys(bucket) if k.startswith(PREFIX + "/") and k.endswith("/meta.json")]
        if metas and Metrics(server.metrics_text()).sum("clew_head_spans") == 0:
            return metas
        time.sleep(0.1)
    raise AssertionError(f"no cut to s3://{bucket}/{PREFIX} within {timeout}s\n{server.log_tail()}")


def test_blocks_live_in_the_bucket_under_the_prefix(server_factory, s3):
    bucket = s3.new_bucket()
    s3.client.put_object(Bucket=bucket, Key="other/keep.txt", Body=b"not Clew's")
    server = server_factory("s3", extra_args=["--storage", f"s3://{bucket}/{PREFIX}", *CUT_NOW], env=s3.env())
    requests_by_tid = {}
    for variant in ["http-protobuf", "http-json", "grpc"]:
        tid = rand_trace_id()
        requests_by_tid[tid] = rich_request(tid)
        assert_full_success(send(server, requests_by_tid[tid], variant), variant)
    metas = wait_for_s3_cut(server, s3, bucket)
    assert all(m.startswith(f"{PREFIX}/single-tenant/blocks/") for m in metas), metas
    assert not list((server.data_dir / "wal").glob("*.wal")), "segments covered by blocks are deleted"
    assert not (server.data_dir / "blocks").exists(), "nothing goes to the local blocks directory"
    for tid, req in requests_by_tid.items():
        assert_same_spans(read(server, tid), req)

    # The log is empty now: after a restart every trace can only come from the bucket.
    server.kill()
    server.start()
    for tid, req in requests_by_tid.items():
        assert_same_spans(read(server, tid), req)

    keys = s3.keys(bucket)
    outside = [k for k in keys if not k.startswith(PREFIX + "/") and k != "other/keep.txt"]
    assert not outside, f"written outside the prefix: {outside}"
    assert "other/keep.txt" in keys, "objects outside the prefix are left alone"
    assert any(k.endswith("/spans.parquet") for k in keys) and any(k.endswith("/traces.parquet") for k in keys)


def _failed_start(server_factory, name, storage, env, timeout=20.0) -> str:
    server = server_factory(name, extra_args=["--storage", storage], env=env, start=False)
    server.expected_dead = True
    server.spawn()
    try:
        rc = server.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"clew serve still running after {timeout}s\n{server.log_tail()}") from None
    server.expected_dead = True
    log = server.log_path.read_text(errors="replace")
    assert rc != 0, log
    return log


def test_an_unreachable_endpoint_fails_the_start_clearly(server_factory, s3):
    dead_port = free_ports(1)[0]
    started = time.monotonic()
    log = _failed_start(server_factory, "s3-dead", "s3://clew-nowhere/p", s3.env(f"http://127.0.0.1:{dead_port}"))
    assert time.monotonic() - started < 15, "no long retries before giving up"
    assert "checking the block storage" in log, log
    assert "s3://clew-nowhere/p" in log and f"127.0.0.1:{dead_port}" in log, log


def test_a_missing_bucket_fails_the_start_clearly(server_factory, s3):
    log = _failed_start(server_factory, "s3-nobucket", "s3://clew-no-such-bucket/p", s3.env())
    assert "checking the block storage" in log, log
    assert "NoSuchBucket" in log or "does not exist" in log, log


def test_a_bad_storage_url_is_a_usage_error(server_factory):
    log = _failed_start(server_factory, "s3-badurl", "s3://Not_A_Bucket/p", {})
    assert "--storage: invalid storage" in log, log
