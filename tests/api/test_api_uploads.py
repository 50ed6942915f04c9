"""Resumable chunked uploads through the HTTP API (real stack): an interrupted upload
resumed from where it stands, and a 2 GB file with the API process's memory flat."""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bus.dev.launcher import served_api, wait_until
from bus.identity import IdentityStore
from bus.runtime import Runtime
from bus.settings import Settings
from tests.api.uploads_support import open_upload, send

pytestmark = pytest.mark.stack
CITY = "216900910"
ROOT = Path(__file__).resolve().parents[2]
MB = 1024 * 1024


@pytest.fixture(scope="module")
def served(bus_env: dict[str, str], var_dir: Path) -> Iterator[tuple[str, int]]:
    """A ``demat serve`` of its own (its pid is measured) against the session stack."""
    with served_api(bus_env, var_dir / "api-uploads.log", cwd=ROOT) as api:
        yield api.url, api.pid


@pytest.fixture(scope="module")
def token(settings: Settings, services) -> str:  # type: ignore[no-untyped-def]
    runtime = Runtime(settings)
    ids = IdentityStore.of(runtime)
    login = f"uploader-{uuid.uuid4().hex[:6]}"
    ids.add_user(login, CITY, "producer")
    return ids.create_token(login, name="uploads")[0]


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _block(i: int) -> bytes:
    """1 MiB of content that differs from block to block (nothing compresses it)."""
    seed = hashlib.sha256(str(i).encode()).digest()
    return (seed * (MB // len(seed)))[:MB]


def test_an_interrupted_upload_resumes_and_becomes_a_document(served, token: str) -> None:
    url, _ = served
    data = b"%PDF-1.7\n" + os.urandom(3 * MB + 5)  # the flow takes what its name says
    with httpx.Client(base_url=url, timeout=60) as http:
        opened = open_upload(http, token, CITY, size=len(data), name="plan.pdf")
        assert opened.status_code == 201, opened.text
        location = opened.headers["Location"]
        assert send(http, token, location, 0, data[:2 * MB]).status_code == 204
        again = send(http, token, location, 0, data[:2 * MB])  # answer lost: sent again
        assert again.headers["Upload-Offset"] == str(2 * MB)
        skipped = send(http, token, location, 3 * MB, data[3 * MB:])
        assert skipped.status_code == 409 and skipped.json()["error"]["field"] == "offset"
        offset = int(http.head(location, headers={"Authorization": f"Bearer {token}"})
                     .headers["Upload-Offset"])
        assert send(http, token, location, offset, data[offset:]).status_code == 204
        sent = http.post("/v1/documents/uploaded", headers={"Authorization": f"Bearer {token}"},
                         json={"flow": "document", "tenant": CITY, "metadata": {"title": "Plan"},
                               "uploads": [opened.json()["id"]]})
        assert sent.status_code == 202, sent.text
        doc = sent.json()["id"]
        assert wait_until(lambda: http.get(f"/v1/documents/{doc}", headers={
            "Authorization": f"Bearer {token}"}).json().get("state") in ("completed", "error"),
            120)
        files = http.get(f"/v1/documents/{doc}/artefacts",
                         headers={"Authorization": f"Bearer {token}"}).json()["files"]
        main = next(f for f in files if f["kind"] == "submitted")
        assert main["sha256"] == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(("flow", "size", "status", "field"), [
    ("invoice", 1024**3, 422, "size"),  # a 1 GB invoice: refused before any byte is sent
    ("acte", 200 * MB, 422, "size"),
    ("nosuchflow", 10, 422, "flow"),
    ("invoice", 10 * MB, 201, None),
])
def test_an_upload_for_a_flow_is_bounded_by_its_limits(served, token: str, flow: str,
                                                        size: int, status: int,
                                                        field: str | None) -> None:
    url, _ = served
    with httpx.Client(base_url=url, timeout=60) as http:
        opened = http.post("/v1/uploads", headers={"Authorization": f"Bearer {token}"},
                           json={"tenant": CITY, "name": "f.xml", "size": size, "flow": flow})
    assert opened.status_code == status, opened.text
    if field is not None:
        assert opened.json()["error"]["field"] == field


@pytest.mark.timeout(900)
@pytest.mark.session_last  # the tests that read every stored object (audit verify, the
# privacy scan) would each read its 2 GB again
def test_a_2_gb_file_goes_through_with_the_api_memory_flat(served, token: str) -> None:
    url, pid = served
    chunk_mb, total_mb = 64, 2048
    digest = hashlib.sha256()
    peak, stop = [0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_kb(pid))
            time.sleep(0.2)

    with httpx.Client(base_url=url, timeout=300) as http:
        opened = open_upload(http, token, CITY, size=total_mb * MB, name="archive.bin")
        location = opened.headers["Location"]
        before = _rss_kb(pid)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            for start in range(0, total_mb, chunk_mb):
                blocks = [_block(i) for i in range(start, start + chunk_mb)]
                for block in blocks:
                    digest.update(block)
                got = send(http, token, location, start * MB, b"".join(blocks))
                assert got.status_code == 204, got.text
            sent = http.post("/v1/documents/uploaded",
                             headers={"Authorization": f"Bearer {token}"},
                             json={"flow": "document", "tenant": CITY,
                                   "metadata": {"title": "Archive", "deposit": False,
                                                "archive": False},
                                   "uploads": [opened.json()["id"]]})
        finally:
            stop.set()
            sampler.join()
        assert sent.status_code == 202, sent.text
        doc = sent.json()["id"]
        files = http.get(f"/v1/documents/{doc}/artefacts",
                         headers={"Authorization": f"Bearer {token}"})
    growth_mb = (peak[0] - before) / 1024
    assert growth_mb < 64, f"the API process grew by {growth_mb:.0f} MB"
    main = next(f for f in files.json()["files"] if f["kind"] == "submitted")
    assert (main["sha256"], main["size"]) == (digest.hexdigest(), total_mb * MB)
