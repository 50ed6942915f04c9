"""HR decree and contract through the real bus and the simulators: signature (double
signature on the i-Parapheur tenant), prefecture transmission only when the act type
requires it, agent file."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest

from bus.client import DematClient
from bus.dev.launcher import Services
from bus.settings import Settings
from workers.hr.demo import hr_documents

pytestmark = pytest.mark.stack


@pytest.mark.timeout(900)
def test_decree_and_contract_signed_transmitted_and_filed(
        settings: Settings, services: Services, tmp_path: Path) -> None:
    docs = hr_documents(7, stamp=int(time.time()) % 10**7)

    async def go() -> list:
        async with DematClient(settings) as client:
            ids = []
            for n, doc in enumerate(docs):
                receipt = await client.submit(doc.flow, doc.write(tmp_path / str(n)),
                                              tenant=doc.tenant, metadata=doc.metadata)
                ids.append(receipt.doc_id)
            return list(await asyncio.gather(*(client.wait(i, 600, 0.5) for i in ids)))

    decree, contract, leave = asyncio.run(go())
    assert [s.state.value for s in (decree, contract, leave)] == ["completed"] * 3, \
        [(s.current_step, s.error) for s in (decree, contract, leave)]
    signatures = [s for s in contract.record("sign").output["signers"]
                  if s["action"] == "SIGNATURE"]
    # authority, then the agent: their desks, and the people who signed (PREMIS agents)
    assert [s["desk"] for s in signatures] == ["Autorité territoriale", "Agent"]
    assert all(s["signer"] and s["signer"] != s["desk"] for s in signatures)
    assert decree.record("sign").output["mode"] == "seal"  # seal tenant: one signature
    for act in (decree, contract):
        transmit = act.record("transmit").output
        assert transmit["transmitted"] and transmit["transmitted_file"].endswith(".pdf")
        assert transmit["transmitted_file"] != act.envelope.files[0].name  # the signed PDF
        assert act.record("acknowledgement").output["official_id"] == transmit["expected_id"]
    assert leave.record("transmit").output["transmitted"] is False
    assert "transaction_id" not in leave.record("acknowledgement").output

    folder = Path(decree.record("agent-file").output["location"])
    record = json.loads((folder / "metadata.json").read_text())
    assert record["acte_id"] == decree.record("acknowledgement").output["official_id"]
    webdav = contract.record("agent-file").output["location"]
    assert f"/dossiers-agents/H007R/{contract.doc_id}" in webdav
    pdf = httpx.get(webdav + "/" + contract.record("transmit").output["transmitted_file"])
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")

    sims = json.loads((settings.var_dir / "simulators.json").read_text())
    counts = httpx.get(f"{sims['s2low']}/_sim/counts").json()
    assert not counts.get("duplicates"), counts
