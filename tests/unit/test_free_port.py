"""The ports make dev and the tests start servers on are taken outside the range the kernel
hands outgoing connections, so no client's socket can take one before its server binds."""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator
from pathlib import Path

from dev.processes import free_port


def _ephemeral_low() -> int:
    return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])


class _Scripted(random.Random):
    """Candidates in a given order."""

    def __init__(self, ports: Iterator[int]) -> None:
        super().__init__()
        self.ports = ports

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:
        return next(self.ports)


def test_a_free_port_is_below_the_ephemeral_range_and_can_be_bound() -> None:
    low = _ephemeral_low()
    ports = {free_port() for _ in range(20)}
    assert all(10_000 <= port < low for port in ports), ports
    assert len(ports) > 1  # picked at random, not the same one every time
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_someone_listens_on_is_not_handed_out() -> None:
    with socket.socket() as busy, socket.socket() as spare:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        spare.bind(("127.0.0.1", 0))
        spare_port = spare.getsockname()[1]
        spare.close()  # free again: the one to hand out
        candidates = iter([busy.getsockname()[1], spare_port])
        assert free_port(rng=_Scripted(candidates)) == spare_port
