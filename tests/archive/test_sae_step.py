"""The archive step with real As@lae replies: a reply that fails its schema is still
read, kept as an artefact and its schema message is in the step output; an unreadable
one is kept as an artefact of the failed step."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from tests.archive.test_archive_journal import FileStore, _ctx, _history
from workers.archive import mapping, step
from workers.archive.exchange import UnreadableReply

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "sae"


class Sae:
    """The replies the archive gives for transfer T1."""

    poll_seconds, max_poll_seconds = 1.0, 10.0

    def __init__(self, ack: bytes | None, atr: bytes | None) -> None:
        self.ack, self.atr = ack, atr

    async def acknowledgement(self, transferring: str, transfer_id: str) -> bytes | None:
        return self.ack

    async def transfer_reply(self, transferring: str, transfer_id: str) -> bytes | None:
        return self.atr


def _ctx_sent(progress: dict | None) -> Any:
    """The step's context for a document whose SIP T1 was sent."""
    _, task = _history()
    task = task.model_copy(update={"progress": progress or {
        "transfer_id": "T1", "sent_at": time.time(), "manifest": None}})
    ctx = _ctx(task, FileStore())
    ctx.artefacts = []
    return ctx


def _run(sae: Sae, progress: dict | None = None, ctx: Any = None) -> tuple[Any, Any]:
    ctx = ctx or _ctx_sent(progress)
    options = mapping.step_options(ctx.step.options, "archive")
    settings = mapping.tenant_settings(ctx.tenant)
    return ctx, asyncio.run(step._single(ctx, options, settings, sae))


def test_schema_invalid_accepted_reply_is_kept_and_said() -> None:
    ack = (SAMPLES / "ack_asalae.xml").read_bytes()
    atr = (SAMPLES / "atr_asalae_ok.xml").read_bytes()
    ctx, result = _run(Sae(ack, atr))
    assert result.output["reply_code"] == "000"
    assert result.output["archival_id"] == "AE_2022_15"
    [problem] = result.output["reply_problems"]
    assert problem.startswith("ArchiveTransferReply kept although its schema refuses it")
    kept = {a.file.sha256 for a in ctx.artefacts if a.kind == "partner-reply"}
    assert len(kept) == 2 and all(ctx.runtime.store.files[s] in (ack, atr) for s in kept)


def test_ack_problem_survives_the_wait_for_the_atr() -> None:
    bad_ack = (SAMPLES / "ack_asalae.xml").read_bytes().replace(
        b"<Date>2021-07-22T15:43:52+02:00</Date>", b"")
    _, waiting = _run(Sae(bad_ack, None))
    assert "Acknowledgement kept" in waiting.progress["reply_problems"][0]
    _, done = _run(Sae(None, (SAMPLES / "atr_asalae_ko.xml").read_bytes().replace(
        b"<ReplyCode>101</ReplyCode>", b"<ReplyCode>000</ReplyCode>")), waiting.progress)
    assert done.output["reply_problems"] == waiting.progress["reply_problems"]


def test_unreadable_reply_is_an_artefact_of_the_failure() -> None:
    broken = b"<ArchiveTransferReply xmlns='fr:gouv:culture:archivesdefrance:seda:v2.1'/>"
    ctx = _ctx_sent(None)
    with pytest.raises(UnreadableReply, match="no ReplyCode"):
        _run(Sae(None, broken), ctx=ctx)
    [artefact] = ctx.artefacts
    assert ctx.runtime.store.files[artefact.file.sha256] == broken
