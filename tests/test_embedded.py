"""The embedded stack's process and port helpers, on real processes and sockets."""

from __future__ import annotations

import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bus.dev.embedded import (
    EmbeddedStack,
    ephemeral_range,
    free_ports,
    kafka_answers,
    pid_alive,
    port_is_free,
    tcp_open,
)

EXIT_THREAD = {"x86_64": 60, "aarch64": 93}  # the raw exit(2) syscall: ends one thread only

# Listens, then ends its first thread while a second one keeps the process (and its socket).
CHILD = """
import ctypes, socket, sys, threading, time
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen()
threading.Thread(target=time.sleep, args=(float(sys.argv[2]),)).start()
print(srv.getsockname()[1], flush=True)
ctypes.CDLL(None).syscall(int(sys.argv[1]), 0)
"""


def _leader_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1]


@pytest.mark.skipif(platform.machine() not in EXIT_THREAD, reason="needs a known exit syscall")
def test_process_whose_first_thread_exited_is_alive_until_its_last_thread_ends() -> None:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(EXIT_THREAD[platform.machine()]),
                             "1.5"], stdout=subprocess.PIPE, text=True)
    port = int(proc.stdout.readline())
    deadline = time.monotonic() + 5
    while _leader_state(proc.pid) != "Z" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _leader_state(proc.pid) == "Z"
    assert tcp_open(port)  # the socket is still held...
    assert pid_alive(proc.pid)  # ...so the process is not gone
    proc.wait(10)
    assert not pid_alive(proc.pid)
    assert not tcp_open(port)


def test_free_ports_are_below_the_ephemeral_range() -> None:
    low = ephemeral_range()[0]
    ports = free_ports(4, with_grpc=True) + free_ports(1)
    assert len(set(ports)) == 5
    assert all(10000 <= p < low and port_is_free(p) for p in ports)
    assert all(p + 10000 < low for p in ports[:4])


def test_broker_is_up_when_it_answers_kafka_not_when_its_port_accepts(stack: EmbeddedStack) -> None:
    assert kafka_answers(stack.info["ports"]["kafka"])
    with socket.socket() as silent:  # accepts connections, says nothing
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        assert tcp_open(port)
        assert not kafka_answers(port, timeout=0.5)
    assert not kafka_answers(port)
