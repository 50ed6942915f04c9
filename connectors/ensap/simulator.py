"""An ENSAP deposit endpoint: receives encrypted batches, decrypts and checks them.

It holds ENSAP's OpenPGP key (``GET /ensap/public-key`` gives the public part).
``PUT /ensap/lots/{lot}`` takes a package (see ``package``): named
``<nom_fichier>.tar.gz.gpg`` in ``Content-Disposition``, it must decrypt with the key,
be a tar.gz holding ``index.xml`` valid against the v1.3.2 schema and passing the
content checks ENSAP's material states (``envelope.content_errors``), and hold exactly
the PDFs the envelope names (each a PDF, of the declared ``poids_fichier`` if any).
Anything else is refused with 422 and the reason. ``GET`` of the same path answers
whether the lot was received (clients ask before re-sending). The transport itself is
ours (ENSAP publishes none). Counts per lot and per pay slip (NIR + SIRET + date)
prove exactly-once effects; the counts expose only digests of those keys.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pysequoia
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from connectors.ensap.envelope import content_errors, entries_of, package_name, schema_errors
from connectors.ensap.package import ARCHIVE_NAME, SUFFIX, Member, PackageError, open_package
from connectors.simulator import FailurePlan, HttpSimulator, SubmissionCounter

_FILENAME = re.compile(r'filename="?([^";]+)"?')


class EnsapSimulator(HttpSimulator):
    """The app, its OpenPGP key, the lots received and the counters."""

    title = "ENSAP simulator"

    def counts(self) -> dict[str, Any]:
        return {"lots": self.lot_puts.snapshot(), "duplicates": self.lot_puts.duplicates(),
                "pay_slips": len(self.pay_slips.snapshot()),
                "pay_slip_duplicates": self.pay_slips.duplicates(),
                "lookups": self.lookups.snapshot()}

    def __init__(self, failures: FailurePlan | None = None) -> None:
        self.key = pysequoia.Tsk.generate("ENSAP simulateur <ensap-sim@localhost>",
                                          profile=pysequoia.Profile.RFC4880)
        super().__init__(failures)
        self.lots: dict[str, dict[str, Any]] = {}
        self.lot_puts = SubmissionCounter()
        self.pay_slips = SubmissionCounter()
        self.lookups = SubmissionCounter()
        self.lock = threading.Lock()
        self.app = self._build()

    @property
    def public_key(self) -> bytes:
        """ENSAP's OpenPGP certificate, ASCII-armoured."""
        return str(self.key.extract_certificate()).encode()

    def _build(self) -> FastAPI:
        app = self.new_app()
        sim = self

        @app.get("/ensap/public-key")
        async def public_key() -> Response:
            return Response(sim.public_key, media_type="application/pgp-keys")

        @app.get("/ensap/lots/{lot}")
        async def lookup(lot: str) -> Response:
            await sim.failures.apply()
            sim.lookups.add(lot)
            receipt = sim.lots.get(lot)
            if receipt is None:
                return JSONResponse({"lot": lot, "status": "unknown"}, status_code=404)
            return JSONResponse(receipt)

        @app.put("/ensap/lots/{lot}")
        async def deposit(lot: str, request: Request) -> Response:
            outcome = sim.failures.draw()
            if outcome == "error":
                return Response(status_code=503, content="injected failure")
            with tempfile.TemporaryDirectory(prefix="ensap-sim-") as folder:
                body = Path(folder) / "body"
                with body.open("wb") as out:
                    async for chunk in request.stream():
                        out.write(chunk)
                status, receipt = await asyncio.to_thread(
                    sim.receive, lot, dict(request.headers), body)
            if outcome == "timeout":  # the lot is received, the answer is lost
                await asyncio.sleep(sim.failures.timeout_seconds)
            return JSONResponse(receipt, status_code=status)

        return app

    def receive(self, lot: str, headers: dict[str, str], body: Path
                ) -> tuple[int, dict[str, Any]]:
        """Open, check and record a lot; (HTTP status, receipt or refusal)."""
        self.lot_puts.add(lot)
        with self.lock:
            if lot in self.lots:
                return 200, self.lots[lot]
        try:
            entries = self._check(headers, body)
        except PackageError as exc:
            return 422, {"lot": lot, "status": "refused", "reason": str(exc)}
        receipt = {"lot": lot, "status": "accepted", "entries": entries,
                   "received_at": datetime.now(UTC).isoformat()}
        with self.lock:
            if lot in self.lots:
                return 200, self.lots[lot]
            self.lots[lot] = receipt
        for entry in entries:
            self.pay_slips.add(entry["key"])
        return 201, receipt

    def _check(self, headers: dict[str, str], body: Path) -> list[dict[str, str]]:
        found = _FILENAME.search(headers.get("content-disposition", ""))
        filename = found.group(1) if found else ""
        if not filename.endswith(SUFFIX) or not ARCHIVE_NAME.fullmatch(filename[:-len(SUFFIX)]):
            raise PackageError(f"package name {filename or '(none)'!r} is not "
                               f"ENVOI-PJ-BPG-...{SUFFIX}")
        index, members = open_package(self.key, body, body.parent)
        errors = schema_errors(index)
        if errors:
            raise PackageError("index.xml invalid against envoi-BP-Generique v1.3.2: "
                               + "; ".join(errors[:5]))
        errors = content_errors(index, sorted(members))
        if errors:
            raise PackageError("index.xml: " + "; ".join(errors[:5]))
        if filename[:-len(SUFFIX)] != package_name(index):
            raise PackageError("package name differs from index.xml message/nom_fichier")
        return [_entry(e, members) for e in entries_of(index)]


def _entry(e: dict[str, str], members: dict[str, Member]) -> dict[str, str]:
    member = members[e["nom_fichier"]]  # content_errors: every named file is there
    if not member.head.startswith(b"%PDF-"):
        raise PackageError(f"entry {e['numero_ordre']}: file is not a PDF")
    if e["poids_fichier"] and int(e["poids_fichier"]) != member.size:
        raise PackageError(f"entry {e['numero_ordre']}: poids_fichier is "
                           f"{e['poids_fichier']}, file has {member.size} bytes")
    key = hashlib.sha256(e["nom_fichier"].encode()).hexdigest()[:16]  # NIR_SIRET_date
    return {"numero_ordre": e["numero_ordre"], "reference_emetteur": e["reference_emetteur"],
            "key": key, "sha256": member.sha256}
