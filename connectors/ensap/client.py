"""ENSAP deposit client: send a batch once, ask before re-sending.

The package is ENSAP's (see ``package``); the transport is ours, as ENSAP publishes
none (connectors/README.md): ``PUT /ensap/lots/{lot}`` with the ``.tar.gz.gpg`` as body and its
name in ``Content-Disposition``, ``GET`` of the same path for the receipt.

Options: ``url`` (or ``sim:ensap``), ``code_emetteur`` (9 characters, in the envelope),
``nom_emetteur_sre`` and ``code_emetteur_sre`` (the emitter name and code the SRE gave
the authority, in the package name), ``code_cft``, ``code_employeur``, ``public_key``
(file of ENSAP's OpenPGP public key; with a ``sim:`` URL it is fetched from the
simulator, and the SRE name and code default to ``SIM`` and the first five characters
of ``code_emetteur``), ``timeout``.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import httpx
import pysequoia

from connectors.ensap.envelope import Emitter, package_name
from connectors.ensap.package import SUFFIX, build_package, load_certificate
from connectors.errors import BusinessRefusal
from connectors.frames import read_chunks
from connectors.http import call, raise_for_status, resolve_url

PARTNER = "ensap"
MEDIA_TYPE = "application/pgp-encrypted"


class EnsapClient:
    """Deposit pay slip batches (lots) on ENSAP."""

    def __init__(self, base_url: str, emitter: Emitter, *, public_key: bytes | None = None,
                 timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.emitter = emitter
        self._cert = load_certificate(public_key) if public_key else None
        self.http = httpx.AsyncClient(timeout=timeout)

    @classmethod
    def from_options(cls, options: dict[str, Any], *, var_dir: Path) -> EnsapClient:
        sim = str(options["url"]).startswith("sim:")
        path = options.get("public_key") or options.get("certificate")
        key = Path(path).read_bytes() if path else None
        if key is None and not sim:
            raise ValueError("ensap connector: option 'public_key' (file of ENSAP's OpenPGP "
                             "public key) is required")
        code = str(options["code_emetteur"])
        missing = [n for n in ("nom_emetteur_sre", "code_emetteur_sre") if not options.get(n)]
        if missing and not sim:
            raise ValueError(f"ensap connector: option(s) {', '.join(missing)} required "
                             "(the emitter name and code the SRE gave the authority)")
        emitter = Emitter(code_emetteur=code, code_cft=str(options.get("code_cft", "")),
                          code_employeur=options.get("code_employeur"),
                          sre_name=str(options.get("nom_emetteur_sre") or "SIM"),
                          sre_code=str(options.get("code_emetteur_sre") or code[:5]))
        return cls(resolve_url(options["url"], var_dir), emitter, public_key=key,
                   timeout=float(options.get("timeout", 30)))

    def _lot_url(self, lot: str) -> str:
        return f"{self.base_url}/ensap/lots/{lot}"

    async def certificate(self) -> pysequoia.Cert:
        """ENSAP's OpenPGP public key (configured, or the simulator's)."""
        if self._cert is None:
            resp = raise_for_status(await call(PARTNER, lambda: self.http.get(
                f"{self.base_url}/ensap/public-key")), PARTNER)
            self._cert = load_certificate(resp.content)
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
        name = package_name(envelope_xml)
        with tempfile.TemporaryDirectory(prefix="ensap-") as folder:
            sealed = await asyncio.to_thread(build_package, cert, Path(folder), envelope_xml,
                                             pdfs, name)
            headers = {"Content-Type": MEDIA_TYPE,
                       "Content-Disposition": f'attachment; filename="{name}{SUFFIX}"'}
            resp = await call(PARTNER, lambda: self.http.put(
                self._lot_url(lot), content=_stream(sealed), headers=headers), attempts=1)
        if resp.status_code == 422:
            raise BusinessRefusal(f"ENSAP refused lot {lot}: {resp.json().get('reason')}",
                                  partner=PARTNER, status=422)
        return raise_for_status(resp, PARTNER).json()

    async def aclose(self) -> None:
        await self.http.aclose()


async def _stream(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as fh:
        for chunk in read_chunks(fh):
            yield chunk
