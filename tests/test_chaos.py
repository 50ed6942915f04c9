"""A small chaos run: workers SIGKILLed, broker restarted, partners failing."""

from __future__ import annotations

from pathlib import Path

import pytest

from bus.dev.chaos import ChaosPlan, run_chaos

pytestmark = pytest.mark.stack


def test_small_chaos_loses_nothing_and_does_nothing_twice(tmp_path: Path) -> None:
    # partners fail one call in ten here (``demat chaos``: one in five): a deposit makes
    # some five calls, and at one in five its retries' back-off alone took up to 3 minutes
    plan = ChaosPlan(documents=30, kills=2, kill_interval=3.0, error_rate=0.10,
                     timeout_rate=0.05, timeout_seconds=6.0, deadline=400, seed=11)
    report = run_chaos(tmp_path / "chaos", plan, log=lambda m: None)
    assert report.kills == 2 and report.broker_restarts == 1
    assert report.lost == 0
    assert report.duplicate_effects == 0
    assert report.journal_consistent, report.journal_problems
    assert report.completed + report.errors == 30
