"""The ports make dev and the tests start servers on are taken outside the range the kernel
hands outgoing connections, so no client's socket can take one before its server binds."""

from __future__ import annotations

import socket

import pytest

from dev import processes
from dev.processes import _ephemeral_ports, free_port


def test_a_free_port_is_below_the_ephemeral_range_and_can_be_bound() -> None:
    low, high = _ephemeral_ports()
    assert 1024 < low < high
    ports = {free_port() for _ in range(20)}
    assert all(10_000 <= port < low for port in ports), ports
    assert len(ports) > 1  # picked at random, not the same one every time
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_someone_listens_on_is_not_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as busy, socket.socket() as spare:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        spare.bind(("127.0.0.1", 0))
        candidates = iter([busy.getsockname()[1], spare.getsockname()[1]])
        spare_port = spare.getsockname()[1]
        spare.close()  # free again: the one to hand out
        monkeypatch.setattr(processes._PORTS, "randrange", lambda *_: next(candidates))
        assert free_port() == spare_port
