"""PES V2: shared samples, the negative one, sealing per bordereau, acquit and returns."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from connectors.s2low.acquit import read_acquit as read_tolerant
from connectors.s2low.client import S2lowClient
from connectors.s2low.helios import HeliosClient
from connectors.s2low.simulator import S2lowSimulator
from connectors.seal.local import LocalSeal
from connectors.seal.verify import verify_xml
from schemas.pes import (
    PesError,
    build_acquit,
    build_retour,
    check_retour,
    read_acquit,
    validate_aller,
)
from tests.conftest import SHARED
from workers.finance.demo_pes import demo_pes

SAMPLES = SHARED / "fixtures" / "pes" / "samples"
XSDCHECK = SHARED / "tools" / "xsdcheck.py"


def _chunks(data: bytes, size: int = 700) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("name", ["PES_ex.xml", "HELIOS_SIMU_ALR2_1496987735_826268894.xml",
                                  "HELIOS_SIMU_ALR2_LibelleColBud_avec_accent.xml"])
def test_shared_pes_samples_validate_streamed(name: str) -> None:
    info = validate_aller(_chunks((SAMPLES / name).read_bytes()))
    assert info.collectivity and info.bordereaux and info.domains[0] == "PES_DepenseAller"


def test_bad_pes_is_refused_with_the_schema_message_naming_the_missing_element() -> None:
    data = (SAMPLES / "negative-BlocPiece-without-InfoPce.xml").read_bytes()
    with pytest.raises(PesError, match=r"Element 'IdPce': This element is not expected\. "
                                       r"Expected is \( InfoPce \)") as caught:
        validate_aller(_chunks(data))
    assert caught.value.element == "IdPce"


def test_sealed_pes_verifies_per_bordereau_and_stays_schema_valid(tmp_path: Path) -> None:
    pes = demo_pes("21690091000011", "PESTEST1", bordereaux=2, pieces=2)
    seal = LocalSeal.from_options({}, var_dir=tmp_path)
    signed = asyncio.run(seal.seal("216900910", pes, "application/xml")).data
    info = validate_aller(_chunks(signed, 4096))
    assert info.signatures == 2 == len(info.bordereaux)
    checks = verify_xml(signed, trust_roots=seal.trust_roots("216900910"))
    assert [c.reference for c in checks] == ["#BORDPESTEST11", "#BORDPESTEST12"]
    assert all(c.ok for c in checks), [c.error for c in checks]
    tampered = signed.replace(b'V="100.00"', b'V="900.00"', 1)
    assert not all(c.ok for c in verify_xml(tampered, trust_roots=seal.trust_roots("216900910")))


def test_generated_acquit_and_retour_match_the_official_schemas(tmp_path: Path) -> None:
    info = validate_aller([demo_pes("21690091000011", "PESTEST2")])
    acquit = tmp_path / "acquit.xml"
    acquit.write_bytes(build_acquit(info))
    run = subprocess.run([sys.executable, str(XSDCHECK), "pes-acquit", str(acquit)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout
    assert read_acquit(acquit.read_bytes()).accepted
    assert not read_acquit(build_acquit(info, accepted=False)).accepted
    assert read_acquit((SAMPLES / "PES_ACQUIT.xml").read_bytes()).accepted
    assert check_retour(build_retour(info)) is None


@pytest.fixture()
def helios_sim() -> Iterator[tuple[S2lowSimulator, str]]:
    """A running S²LOW simulator (HELIOS routes) and its URL."""
    sim = S2lowSimulator(step_delay=0.0, archivists={"city"})
    url = sim.start()
    yield sim, url
    sim.stop()


def _pes_file(tmp_path: Path, name: str) -> tuple[bytes, Path]:
    pes = demo_pes("21690091000011", name)
    path = tmp_path / f"{name}.xml"
    path.write_bytes(pes)
    return pes, path


def _submissions(url: str) -> dict[str, int]:
    return httpx.get(f"{url}/_sim/helios/counts").json()["submissions"]


def test_helios_client_sends_once_and_fetches_acquit_and_retour(
        tmp_path: Path, helios_sim: tuple[S2lowSimulator, str]) -> None:
    _sim, url = helios_sim
    pes, path = _pes_file(tmp_path, "PESTEST3")

    async def go() -> tuple:
        helios = HeliosClient(S2lowClient(url, login="city", password="pw"))
        sha1 = hashlib.sha1(pes).hexdigest()
        first = await helios.submit_pes(path.name, path, sha1)
        again = await helios.submit_pes(path.name, path, sha1,  # redelivered: id kept
                                        known_id=first.transaction_id)
        status = await helios.get_status(first.transaction_id)
        acquit = read_acquit(await helios.get_acquit(first.transaction_id))
        retours = await helios.list_retours()
        retour = await helios.get_retour(retours[0].id)
        await helios.mark_retour_read(retours[0].id)
        left = await helios.list_retours()
        bad = (SAMPLES / "negative-BlocPiece-without-InfoPce.xml").read_bytes()
        bad_id = await helios.post_pes("bad.xml", bad)  # S²LOW does not check the XSD:
        bad_status = await helios.get_status(bad_id)  # the treasury refuses it
        assert bad_status.status == 6
        assert "InfoPce" in read_tolerant(await helios.get_acquit(bad_id)).reason
        await helios.aclose()
        return first, again, status, acquit, retour, left

    first, again, status, acquit, retour, left = asyncio.run(go())
    counts = _submissions(url)
    assert first.created and not again.created and again.transaction_id == first.transaction_id
    assert status.status == 4 and acquit.accepted and acquit.file_name == "PESTEST3"
    assert check_retour(retour) is None and left == []
    assert counts == {"city/PESTEST3.xml": 1, "city/bad.xml": 1}


def test_pes_sent_once_when_the_answer_of_the_post_is_lost(
        tmp_path: Path, helios_sim: tuple[S2lowSimulator, str]) -> None:
    from connectors.errors import TransientError
    from connectors.simulator import FailurePlan

    sim, url = helios_sim
    pes, path = _pes_file(tmp_path, "PESLOST1")

    async def go() -> object:
        helios = HeliosClient(S2lowClient(url, login="city", password="pw", timeout=0.5))
        sim.failures = FailurePlan(timeout_rate=1.0, timeout_seconds=1.5)
        with pytest.raises(TransientError):  # posted, but the answer never came back
            await helios.post_pes(path.name, pes)
        sim.failures = FailurePlan()
        again = await helios.submit_pes(path.name, path, hashlib.sha1(pes).hexdigest())
        await helios.aclose()
        return again

    again = asyncio.run(go())
    assert again.created is False and again.duplicate  # "doublon": recovered by SHA-1
    assert _submissions(url) == {"city/PESLOST1.xml": 1}
