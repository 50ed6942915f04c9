"""The README's first document over HTTP, run line by line as a newcomer would (bash,
``demat`` and curl) against the session's API: submitted, followed to ``completed``,
its export downloaded."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from workers.common.demo import minimal_pdf

pytestmark = pytest.mark.stack
ROOT = Path(__file__).resolve().parents[2]
README_URL = "http://127.0.0.1:8080"


def _readme_lines() -> list[str]:
    """The shell block that follows "A first document over HTTP" in the README."""
    text = (ROOT / "README.md").read_text()
    start = text.index("A first document over HTTP")
    block = re.search(r"```sh\n(.*?)```", text[start:], re.S)
    assert block is not None, "README: no shell block after 'A first document over HTTP'"
    return [line for line in block.group(1).splitlines() if line.strip()]


def _bash(line: str, env: dict[str, str], cwd: Path) -> str:
    run = subprocess.run(["bash", "-c", line], env=env, cwd=cwd, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, f"{line}\n{run.stderr}"
    return run.stdout


def test_the_readme_curl_lines_submit_follow_and_export(api: str, bus_env: dict[str, str],
                                                        services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    users, token_line, submit, follow, export = _split(_readme_lines())
    (tmp_path / "lettre.pdf").write_bytes(minimal_pdf("Lettre au maire"))
    env = os.environ | bus_env | {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
                                  "PYTHONPATH": str(ROOT)}  # the session bus's test family
    for line in users:
        _bash(line, env, tmp_path)
    env["DEMAT_TOKEN"] = _bash(token_line.replace("export DEMAT_TOKEN=", "echo "),
                               env, tmp_path).strip()
    answer = json.loads(_bash(submit.replace(README_URL, api), env, tmp_path))
    assert answer["state"] == "submitted" and answer["location"] == f"/v1/documents/{answer['id']}"
    follow = follow.replace(README_URL, api).replace("ID", answer["id"])
    deadline = time.monotonic() + 120
    state = ""
    while state != "completed" and time.monotonic() < deadline:
        state = json.loads(_bash(follow, env, tmp_path))["state"]
        assert state not in ("error", "rejected"), state
        time.sleep(1)
    assert state == "completed"
    _bash(export.replace(README_URL, api).replace("ID", answer["id"]), env, tmp_path)
    names = zipfile.ZipFile(tmp_path / "export.zip").namelist()
    assert "manifest.json" in names and "files/lettre.pdf" in names


def _split(lines: list[str]) -> tuple[list[str], str, str, str, str]:
    users = [line for line in lines if line.startswith("demat users add")]
    token = next(line for line in lines if line.startswith("export DEMAT_TOKEN="))
    curls = [line for line in lines if line.startswith("curl")]
    assert len(curls) == 3 and len(users) + len(curls) + 1 == len(lines), lines
    return users, token, *curls  # type: ignore[return-value]
