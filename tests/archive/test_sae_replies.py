"""Replies read tolerantly and never dropped: real As@lae and Vitam replies (published
Pastell fixtures, tests/samples/sae), schema-invalid replies kept with the schema's
message, unreadable ones kept and named in the error."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import pytest

from connectors.sae import seda
from connectors.sae.asalae import TransferLookup
from schemas.envelope import FileRef
from workers.archive.exchange import UnreadableReply, fetch_replies

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "sae"


def _sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def test_asalae_replies() -> None:
    ack = seda.parse_acknowledgement(_sample("ack_asalae.xml"))
    assert ack.message_id == "FRAD000_ACK_14" and ack.schema_error is None
    ok = seda.parse_transfer_reply(_sample("atr_asalae_ok.xml"))
    assert ok.accepted and ok.reply_code == "000" and ok.archival_id == "AE_2022_15"
    assert "AE_2022_15_0001" in ok.unit_ids.values()
    assert ok.schema_error and "not valid SEDA 2.1" in ok.schema_error  # stray text
    ko = seda.parse_transfer_reply(_sample("atr_asalae_ko.xml"))
    assert not ko.accepted and ko.reply_code == "101" and ko.schema_error is None
    assert ko.comment == "Transfert de l'acte administratif TRDYTVB"


def test_vitam_replies() -> None:
    ok = seda.parse_transfer_reply(_sample("atr_vitam_ok.xml"))
    assert ok.accepted and ok.reply_code == "OK" and not ok.warning
    assert ok.archival_id == "aeaqaaaaaafdat3yadroqamc2a77c6yaaaba"  # first SystemId
    assert ok.grant_date.startswith("2022-08-24") and ok.request_id
    ko = seda.parse_transfer_reply(_sample("atr_vitam_ko.xml"))
    assert not ko.accepted and ko.reply_code == "KO" and ko.archival_id is None
    assert ko.comment.startswith("Échec du contrôle de cohérence")  # last event's message
    assert ko.schema_error  # no ArchivalAgency, empty code list versions
    warning = _sample("atr_vitam_ok.xml").replace(b"<ReplyCode>OK<", b"<ReplyCode>WARNING<")
    assert seda.parse_transfer_reply(warning).warning


def test_unreadable_replies_raise() -> None:
    with pytest.raises(seda.SedaError, match="no ReplyCode"):
        seda.parse_transfer_reply(_sample("atr_vitam_ok.xml").replace(
            b"<ReplyCode>OK</ReplyCode>", b""))
    with pytest.raises(seda.SedaError, match="not well-formed"):
        seda.parse_transfer_reply(b"<ArchiveTransferReply")


class Store:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def put_bytes(self, tenant: str, data: bytes, *, name: str, **_: Any) -> FileRef:
        sha = hashlib.sha256(data).hexdigest()
        self.files[sha] = data
        return FileRef(sha256=sha, size=len(data), media_type="application/xml", name=name)


def test_a_reply_failing_its_schema_is_kept_and_noted() -> None:
    store = Store()
    found = TransferLookup(ack=_sample("ack_asalae.xml"), atr=_sample("atr_vitam_ko.xml"))
    replies = asyncio.run(fetch_replies(store, None, "216900910", "SA-200000", "T1",  # type: ignore[arg-type]
                                        have_ack=None, found=found))
    assert replies.reply is not None and replies.reply.reply_code == "KO"
    assert replies.atr and store.files[replies.atr.sha256] == _sample("atr_vitam_ko.xml")
    assert len(replies.problems) == 1 and "ArchiveTransferReply kept although its schema " \
        "refuses it: line" in replies.problems[0]


def test_an_unreadable_reply_is_kept_and_named() -> None:
    store = Store()
    broken = b"<ArchiveTransferReply xmlns='fr:gouv:culture:archivesdefrance:seda:v2.1'/>"
    found = TransferLookup(ack=None, atr=broken)

    class Sae:
        async def acknowledgement(self, *_: str) -> None:
            return None

    with pytest.raises(UnreadableReply, match="no ReplyCode") as caught:
        asyncio.run(fetch_replies(store, Sae(), "216900910", "X", "T2",  # type: ignore[arg-type]
                                  have_ack=None, found=found))
    assert store.files[caught.value.kept.sha256] == broken
    assert caught.value.kept.sha256 in str(caught.value)
