"""SSE frames of a tenant's events (``bus.webhooks.stream``); the stream itself on
the real stack."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bus.client import DematClient
from bus.dev.launcher import Services, wait_until
from bus.settings import Settings
from bus.webhooks.stream import HEARTBEAT, frames_of, parse_cursor, tenant_stream
from schemas.messages import DocState, JournalEvent

TENANT_A, TENANT_B = "216900910", "214502494"


def _record(tenant: str, kind: str) -> bytes:
    return JournalEvent(event_id="d1:2", doc_id="d1", seq=2, tenant=tenant, flow="document",
                        type=kind, state=DocState.COMPLETED,
                        at=datetime(2026, 12, 2, tzinfo=UTC)).model_dump_json().encode()


def test_frames_are_the_tenants_matching_events_in_sse_form() -> None:
    frames = frames_of(_record(TENANT_A, "completed"), "0:4,1:2", TENANT_A, ["document.*"])
    assert len(frames) == 1
    lines = frames[0].split("\n")
    assert lines[:2] == ["id: 0:4,1:2", "event: document.completed"] and lines[-2:] == ["", ""]
    assert json.loads(lines[2].removeprefix("data: "))["id"] == "d1:2/document.completed"
    assert frames_of(_record(TENANT_B, "completed"), "0:1", TENANT_A, ["*"]) == []
    assert frames_of(_record(TENANT_A, "completed"), "0:1", TENANT_A, ["step.done"]) == []
    assert frames_of(b"not json", "0:1", TENANT_A, ["*"]) == []


def _parse(frame: str) -> tuple[str, str, dict]:
    fields = dict(line.split(": ", 1) for line in frame.strip().split("\n"))
    return fields["id"], fields["event"], json.loads(fields["data"])


async def _collect(stream, until: str, timeout: float = 60) -> list[tuple[str, str, dict]]:
    """Frames up to the one whose payload id is ``until`` (or ends with it)."""
    got = []

    async def read() -> None:
        async for frame in stream:
            if frame != HEARTBEAT:
                got.append(_parse(frame))
                if got[-1][2]["id"].endswith(until):
                    return

    await asyncio.wait_for(read(), timeout)
    return got


@pytest.mark.stack
def test_a_tenant_stream_carries_its_events_only_and_resumes(
        settings: Settings, services: Services, tmp_path: Path) -> None:
    # the partner simulators (the GEDs) up first, as the other stack tests wait for them
    assert wait_until(lambda: (settings.var_dir / "simulators.json").exists(), 30)

    async def go() -> tuple[str, list, list]:
        stream = tenant_stream(settings, TENANT_A, ["document.*"], heartbeat_s=1)
        assert await anext(stream) == HEARTBEAT  # open: from here on, events come
        async with DematClient(settings) as client:
            ids = []
            for tenant in (TENANT_B, TENANT_A):
                path = tmp_path / f"{tenant}.txt"
                path.write_text(tenant)
                ids.append((await client.submit("document", [path], tenant=tenant,
                                                metadata={"title": "sse"})).doc_id)
            # up to this document's completion (other documents of the tenant may come too)
            done = await client.wait(ids[1], 120)
            assert done is not None and done.state == DocState.COMPLETED
            got = await _collect(stream, f"{ids[1]}:{done.seq}/document.completed", 120)
        await stream.aclose()
        # resumed after the first frame (its document's submission): the next ones come
        again = tenant_stream(settings, TENANT_A, ["document.*"], since=got[0][0])
        resumed = await _collect(again, f"{ids[1]}:{got[-1][2]['data']['seq']}/document."
                                        "completed", 30)
        await again.aclose()
        return ids[1], got, resumed

    doc_a, got, resumed = asyncio.run(go())
    assert {d["tenant"] for _, _, d in got} == {TENANT_A}
    mine = dict.fromkeys((t, d["id"]) for _, t, d in got if d["document"] == doc_a)
    types = [t for t, _ in mine]  # deduplicated by id
    assert types[0] == "document.submitted" and types[-1] == "document.completed"
    assert all(t.startswith("document.") for t in types)
    # resumed: every later event of the document, in the journal's order (across
    # documents, i.e. partitions, the order of a stream is not defined), never the first
    assert _ids_of(resumed, doc_a) == _ids_of(got[1:], doc_a)
    assert got[0][2]["id"] not in {d["id"] for _, _, d in resumed}
    with pytest.raises(ValueError, match="not a stream cursor"):
        parse_cursor("yesterday")


def _ids_of(frames: list, doc_id: str) -> list[str]:
    return list(dict.fromkeys(d["id"] for _, _, d in frames if d["document"] == doc_id))
