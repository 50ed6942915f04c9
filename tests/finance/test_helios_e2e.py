"""Flow ``helios`` end to end: validate (streamed), seal per bordereau, S²LOW, PES_ACQUIT."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bus.client import DematClient
from bus.dev.launcher import Services, wait_until
from bus.settings import Settings
from connectors.seal.verify import verify_xml
from schemas.messages import DocState
from schemas.pes import validate_aller
from tests.conftest import SHARED
from workers.common.demo import DEMO_SIRETS
from workers.finance.demo_pes import demo_pes

pytestmark = pytest.mark.stack
TENANT = "216900910"
XSDCHECK = SHARED / "tools" / "xsdcheck.py"


def test_pes_sealed_sent_once_acknowledged_and_bad_one_refused(
        settings: Settings, services: Services, demat, tmp_path: Path) -> None:
    assert wait_until(lambda: (settings.var_dir / "simulators.json").exists(), 180)
    s2low = json.loads((settings.var_dir / "simulators.json").read_text())["s2low"]
    name = f"PESE2E{time.time_ns() % 10**9}"
    good = tmp_path / f"{name}.xml"
    good.write_bytes(demo_pes(DEMO_SIRETS[TENANT], name))
    refusal = tmp_path / f"REFUS{name}.xml"  # simulator: the treasury refuses it
    refusal.write_bytes(demo_pes(DEMO_SIRETS[TENANT], f"REFUS{name}"))
    bad = tmp_path / "bad.xml"
    bad.write_bytes((SHARED / "fixtures/pes/samples/negative-BlocPiece-without-InfoPce.xml"
                     ).read_bytes())

    async def go() -> list:
        async with DematClient(settings) as client:
            ids = [(await client.submit("helios", [p], tenant=TENANT, metadata={})).doc_id
                   for p in (good, bad, refusal)]
            return list(await asyncio.gather(*(client.wait(i, 200) for i in ids)))

    done, refused, turned_down = asyncio.run(go())
    assert turned_down.state == DocState.REJECTED, turned_down
    assert "refused" in turned_down.error.message
    assert any(a.file.name.startswith("PES_ACQUIT_") for a in turned_down.artefacts)
    assert refused.state == DocState.REJECTED and refused.error.field == "files[0]"
    assert "Expected is ( InfoPce )" in refused.error.message
    assert done is not None and done.state == DocState.COMPLETED, done
    assert done.record("acquit").output["acquit"] is True
    assert done.record("transmit").output["signed"] is True
    counts = httpx.get(f"{s2low}/_sim/helios/counts").json()["submissions"]
    assert counts[f"{TENANT}/{good.name}"] == 1

    out = tmp_path / "export"
    run = demat("export", done.doc_id, "--dir", str(out))
    assert run.returncode == 0, run.stderr
    signed = (out / "artefacts" / "sign" / f"{name}-signed.xml").read_bytes()
    assert validate_aller([signed]).signatures == 2
    assert all(c.intact for c in verify_xml(signed))
    acquit = next((out / "artefacts" / "acquit").glob("PES_ACQUIT_*.xml"))
    check = subprocess.run([sys.executable, str(XSDCHECK), "pes-acquit", str(acquit)],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    assert (out / "artefacts" / "acquit" / f"PES_RETOUR_{name}.xml").exists()
