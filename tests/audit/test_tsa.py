"""RFC 3161 connector against the TSA simulator over HTTP; tokens checked by openssl too."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from connectors.errors import PermanentError, TransientError
from connectors.simulator import FailurePlan, SimulatorServer
from connectors.tsa.client import TsaClient
from connectors.tsa.simulator import TsaSimulator
from connectors.tsa.token import TokenError, build_request, verify_response

DATA = b'{"checkpoint":1,"root":"ab"}'


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory):
    sim = TsaSimulator(tmp_path_factory.mktemp("tsa"))
    with SimulatorServer(sim.app) as server:
        yield sim, server


def _stamp(sim: TsaSimulator, url: str, data: bytes = DATA):
    async def go():
        client = TsaClient(url + "/", ca_pem=sim.keys.ca_pem)
        try:
            return await client.timestamp(data)
        finally:
            await client.aclose()
    return asyncio.run(go())


def test_token_verifies_with_openssl_ts_verify(tsa, tmp_path: Path) -> None:
    sim, server = tsa
    tsr, stamp = _stamp(sim, server.base_url)
    openssl = shutil.which("openssl")
    assert openssl, "openssl is required to check RFC 3161 tokens (apt-get install openssl)"
    (tmp_path / "data").write_bytes(DATA)
    (tmp_path / "t.tsr").write_bytes(tsr)
    ca = tmp_path / "ca.pem"
    ca.write_bytes(sim.keys.ca_pem)
    run = subprocess.run([openssl, "ts", "-verify", "-data", "data", "-in", "t.tsr",
                          "-CAfile", "ca.pem"], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0 and "Verification: OK" in run.stdout, run.stderr
    (tmp_path / "data").write_bytes(DATA + b" ")
    run = subprocess.run([openssl, "ts", "-verify", "-data", "data", "-in", "t.tsr",
                          "-CAfile", "ca.pem"], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode != 0
    counts = httpx.get(f"{server.base_url}/_sim/counts").json()
    assert sum(counts["stamps"].values()) >= 1 and stamp.serial > 0


def test_python_verification_rejects_altered_data_token_and_foreign_ca(tsa, tmp_path) -> None:
    sim, server = tsa
    tsr, _ = _stamp(sim, server.base_url)
    assert verify_response(tsr, DATA, sim.keys.ca_pem).gen_time is not None
    with pytest.raises(TokenError, match="imprint"):
        verify_response(tsr, DATA + b"x", sim.keys.ca_pem)
    flipped = bytearray(tsr)
    flipped[-10] ^= 0x01  # inside the signature
    with pytest.raises(TokenError):
        verify_response(bytes(flipped), DATA, sim.keys.ca_pem)
    other = TsaSimulator(tmp_path / "other")
    with pytest.raises(TokenError, match="not issued by the trusted TSA CA"):
        verify_response(tsr, DATA, other.keys.ca_pem)


def test_refusals_and_failures_are_typed(tsa) -> None:
    sim, server = tsa
    query, _ = build_request(DATA)
    wrong_type = httpx.post(server.base_url + "/", content=query,
                            headers={"Content-Type": "text/plain"})
    assert wrong_type.status_code == 415
    with pytest.raises(TokenError, match=r"refused.*bad_data_format"):
        verify_response(sim.respond(b"\x30\x03\x02\x01\x01"), DATA, sim.keys.ca_pem)
    sim.failures = FailurePlan(error_rate=1.0)
    try:
        with pytest.raises(TransientError, match="HTTP 503"):
            _stamp(sim, server.base_url)
    finally:
        sim.failures = FailurePlan()
    with pytest.raises(PermanentError, match="HTTP 404"):
        _stamp(sim, server.base_url + "/nowhere")
