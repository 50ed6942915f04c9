"""``demat run`` and ``demat demo`` stop what they started on Ctrl-C, SIGTERM or SIGHUP."""

from __future__ import annotations

import os
import signal
import time

import pytest

from bus.cli.stack import STOP_SIGNALS, Stopped, _stopping


class _Env:
    """Stands for what a command started: counts its stops."""

    def __init__(self) -> None:
        self.downs = 0
        self.ignored: list[bool] = []

    def down(self) -> None:
        self.downs += 1
        self.ignored = [signal.getsignal(s) == signal.SIG_IGN for s in STOP_SIGNALS]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_stop_signal_interrupts_and_stops_what_was_started(sig: signal.Signals) -> None:
    env, before = _Env(), {s: signal.getsignal(s) for s in STOP_SIGNALS}
    started = time.monotonic()
    with pytest.raises(Stopped, match=sig.name), _stopping(env):
        os.kill(os.getpid(), sig)
        time.sleep(30)  # interrupted at once
    assert time.monotonic() - started < 10
    assert env.downs == 1
    assert env.ignored == [True] * len(STOP_SIGNALS)  # the stop itself is not cut short
    assert {s: signal.getsignal(s) for s in STOP_SIGNALS} == before


def test_what_was_started_is_stopped_when_the_command_fails() -> None:
    env = _Env()
    with pytest.raises(RuntimeError, match="boom"), _stopping(env):
        raise RuntimeError("boom")
    assert env.downs == 1
