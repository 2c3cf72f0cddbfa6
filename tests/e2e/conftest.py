"""Fixtures that start and stop `clew serve` processes.

CLEW_BIN names the binary (scripts/test.sh sets it); without it the default is
$CARGO_TARGET_DIR/debug/clew, else <repo>/target/debug/clew.

Every server gets free loopback ports and a fresh temp data dir; its stdout/stderr go to a
log file whose tail is attached to the report of any failing test that used it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.register_assert_rewrite("helpers", "sdk_util")

from helpers import ClewServer  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
_SERVERS: list[ClewServer] = []  # every server started in this session, in order


def _default_bin() -> Path:
    target = os.environ.get("CARGO_TARGET_DIR")
    base = Path(target) if target else REPO / "target"
    if not base.is_absolute():
        base = REPO / base
    return base / "debug" / "clew"


@pytest.fixture(scope="session")
def clew_bin() -> str:
    path = Path(os.environ.get("CLEW_BIN") or _default_bin())
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"clew binary not found at {path} (build it, or set CLEW_BIN)", pytrace=False)
    return str(path)


class ServerFactory:
    def __init__(self, clew_bin: str, base: Path):
        self.clew_bin = clew_bin
        self.base = base
        self.servers: list[ClewServer] = []

    def __call__(self, name: str = "clew", extra_args=(), start: bool = True, data_dir=None, env=None) -> ClewServer:
        srv = ClewServer(self.clew_bin, self.base / f"{name}-{len(self.servers)}", name=name,
                         extra_args=extra_args, data_dir=data_dir, env=env)
        self.servers.append(srv)
        _SERVERS.append(srv)
        if start:
            srv.start()
        return srv

    def shutdown(self) -> list[str]:
        """Kill every server; report any that died without the test meaning it to."""
        crashed = []
        for srv in self.servers:
            if srv.proc is not None and not srv.expected_dead and srv.proc.poll() is not None:
                crashed.append(f"{srv.name} exited unexpectedly with {srv.proc.returncode}\n{srv.log_tail()}")
            srv.kill()
        return crashed


@pytest.fixture
def server_factory(clew_bin, tmp_path):
    factory = ServerFactory(clew_bin, tmp_path)
    yield factory
    crashed = factory.shutdown()
    assert not crashed, "\n".join(crashed)


@pytest.fixture
def server(server_factory) -> ClewServer:
    """A fresh server with default limits and an empty data dir."""
    return server_factory("clew")


@pytest.fixture(scope="module")
def module_server_factory(clew_bin, tmp_path_factory):
    factory = ServerFactory(clew_bin, tmp_path_factory.mktemp("module"))
    yield factory
    crashed = factory.shutdown()
    assert not crashed, "\n".join(crashed)


@pytest.fixture(autouse=True)
def _mark_servers(request):
    request.node._clew_first_server = len(_SERVERS)
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    first = getattr(item, "_clew_first_server", len(_SERVERS))
    for i, srv in enumerate(_SERVERS):
        if i >= first or srv.alive():
            rep.sections.append((f"clew server log: {srv.name} ({srv.workdir})", srv.log_tail()))
