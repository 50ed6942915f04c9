"""ENSAP deposit client: send a batch once, ask before re-sending.

Options: ``url`` (or ``sim:ensap``), ``code_emetteur`` (the emitter code ENSAP
gave the authority), ``code_cft``, ``certificate`` (PEM file of ENSAP's
encryption certificate; with a ``sim:`` URL it is fetched from the simulator),
``timeout``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509

from connectors.ensap.envelope import Emitter
from connectors.ensap.package import build_zip, seal_package
from connectors.errors import BusinessRefusal
from connectors.frames import aiter_chunks
from connectors.http import call, raise_for_status, resolve_url

PARTNER = "ensap"


class EnsapClient:
    """Deposit pay slip batches (lots) on ENSAP."""

    def __init__(self, base_url: str, emitter: Emitter, *, certificate: bytes | None = None,
                 timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.emitter = emitter
        self._cert = x509.load_pem_x509_certificate(certificate) if certificate else None
        self.http = httpx.AsyncClient(timeout=timeout)

    @classmethod
    def from_options(cls, options: dict[str, Any], *, var_dir: Path) -> EnsapClient:
        cert = Path(options["certificate"]).read_bytes() if options.get("certificate") else None
        if cert is None and not str(options["url"]).startswith("sim:"):
            raise ValueError("ensap connector: option 'certificate' (PEM of ENSAP's "
                             "encryption certificate) is required")
        emitter = Emitter(code_emetteur=str(options["code_emetteur"]),
                          code_cft=str(options.get("code_cft", "")),
                          code_employeur=options.get("code_employeur"))
        return cls(resolve_url(options["url"], var_dir), emitter, certificate=cert,
                   timeout=float(options.get("timeout", 30)))

    def _lot_url(self, lot: str) -> str:
        return f"{self.base_url}/ensap/lots/{lot}"

    async def certificate(self) -> x509.Certificate:
        """ENSAP's encryption certificate (configured, or the simulator's)."""
        if self._cert is None:
            resp = raise_for_status(await call(PARTNER, lambda: self.http.get(
                f"{self.base_url}/ensap/certificate")), PARTNER)
            self._cert = x509.load_pem_x509_certificate(resp.content)
        return self._cert

    async def lookup(self, lot: str) -> dict[str, Any] | None:
        """ENSAP's receipt of a lot, or ``None`` if it never arrived."""
        resp = await call(PARTNER, lambda: self.http.get(self._lot_url(lot)))
        if resp.status_code == 404:
            return None
        return raise_for_status(resp, PARTNER).json()

    async def deposit(self, lot: str, envelope_xml: bytes,
                      pdfs: list[tuple[str, Iterable[bytes]]]) -> dict[str, Any]:
        """Package, encrypt and send a lot; return ENSAP's receipt.

        A refusal (invalid envelope, undecryptable package) is a ``BusinessRefusal``;
        network failures are transient (the caller asks ``lookup`` before re-sending).
        """
        cert = await self.certificate()
        members = [(f"{lot}.xml", [envelope_xml]), *pdfs]
        zipped, digest, size = await asyncio.to_thread(build_zip, members)
        try:
            headers, frames = seal_package(cert, zipped, digest, size)
            resp = await call(PARTNER, lambda: self.http.put(
                self._lot_url(lot), content=aiter_chunks(frames), headers=headers), attempts=1)
        finally:
            zipped.close()
        if resp.status_code == 422:
            raise BusinessRefusal(f"ENSAP refused lot {lot}: {resp.json().get('reason')}",
                                  partner=PARTNER, status=422)
        return raise_for_status(resp, PARTNER).json()

    async def aclose(self) -> None:
        await self.http.aclose()
