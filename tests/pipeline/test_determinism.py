"""Same config and seed: identical tables and byte-identical figures, with no network."""
from __future__ import annotations

import socket

import pytest
from helpers import copy_site_sources, tiny_config

pytestmark = pytest.mark.slow

LOCAL = ("127.0.0.1", "::1", "localhost")


@pytest.fixture
def no_network(monkeypatch):
    """Fail on any attempt to connect a socket to a non-local address."""
    attempts = []
    original = socket.socket.connect

    def guarded(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and host not in LOCAL and not host.startswith("/"):
            attempts.append(address)
            raise OSError(f"network blocked by test: {address}")
        return original(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setattr(socket, "create_connection",
                        lambda address, *a, **k: guarded(socket.socket(), address))
    yield attempts


def test_second_build_is_identical_and_offline(tiny_build, tmp_path, no_network):
    from generator.pipeline.build import build

    copy_site_sources(tmp_path)
    second = build(tiny_config(tmp_path), site=False)
    first_dir, second_dir = tiny_build.config.output.results_dir, second.results_dir
    compared, differing = 0, []
    for sub in ("tables", "figures"):
        first_files = sorted(p.name for p in (first_dir / sub).iterdir())
        assert first_files == sorted(p.name for p in (second_dir / sub).iterdir())
        for name in first_files:
            if (first_dir / sub / name).read_bytes() != (second_dir / sub / name).read_bytes():
                differing.append(f"{sub}/{name}")
            compared += 1
    assert differing == [], f"files differ between two builds: {differing}"
    assert (first_dir / "manifest.json").read_bytes() == (second_dir / "manifest.json").read_bytes()
    assert compared >= 20, compared
    assert no_network == [], f"the pipeline tried to connect: {no_network}"
