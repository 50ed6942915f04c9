"""An ENSAP deposit endpoint: receives encrypted batches, decrypts and checks them.

``PUT /ensap/lots/{lot}`` takes a package (see ``package``), opens it with the
simulator's private key, validates the envelope against the v1.3.2 schema and
checks every entry's PDF (present, declared size, PDF content). ``GET`` of the
same path answers whether the lot was received (clients ask before re-sending).
Counts per lot and per pay slip (NIR + SIRET + date) prove exactly-once effects;
the counts expose only digests of those keys.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import threading
import zipfile
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from connectors.ensap.envelope import entries_of, schema_errors
from connectors.ensap.package import PackageError, open_package
from connectors.simulator import (
    FailurePlan,
    HttpSimulator,
    SubmissionCounter,
)


def _self_signed() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ENSAP simulateur"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "demat-bus")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now.replace(year=now.year + 2))
            .sign(key, hashes.SHA256()))
    return key, cert


class EnsapSimulator(HttpSimulator):
    """The app, its key pair, the lots received and the counters."""

    title = "ENSAP simulator"

    def counts(self) -> dict[str, Any]:
        return {"lots": self.lot_puts.snapshot(), "duplicates": self.lot_puts.duplicates(),
                "pay_slips": len(self.pay_slips.snapshot()),
                "pay_slip_duplicates": self.pay_slips.duplicates(),
                "lookups": self.lookups.snapshot()}


    def __init__(self, failures: FailurePlan | None = None) -> None:
        self.key, self.cert = _self_signed()
        super().__init__(failures)
        self.lots: dict[str, dict[str, Any]] = {}
        self.lot_puts = SubmissionCounter()
        self.pay_slips = SubmissionCounter()
        self.lookups = SubmissionCounter()
        self.lock = threading.Lock()
        self.app = self._build()

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def _build(self) -> FastAPI:
        app = self.new_app()
        sim = self

        @app.get("/ensap/certificate")
        async def certificate() -> Response:
            return Response(sim.cert_pem, media_type="application/x-pem-file")

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
            body = await request.body()
            status, receipt = await asyncio.to_thread(sim.receive, lot, dict(request.headers),
                                                      body)
            if outcome == "timeout":  # the lot is received, the answer is lost
                await asyncio.sleep(sim.failures.timeout_seconds)
            return JSONResponse(receipt, status_code=status)

        return app

    def receive(self, lot: str, headers: dict[str, str], body: bytes
                ) -> tuple[int, dict[str, Any]]:
        """Open, check and record a lot; (HTTP status, receipt or refusal)."""
        self.lot_puts.add(lot)
        with self.lock:
            if lot in self.lots:
                return 200, self.lots[lot]
        try:
            entries = self._check(open_package(self.key, headers, body))
        except (PackageError, ValueError) as exc:
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

    @staticmethod
    def _check(data: bytes) -> list[dict[str, str]]:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = zf.namelist()
            envelopes = [n for n in names if n.endswith(".xml")]
            if len(envelopes) != 1:
                raise ValueError(f"a lot holds one envelope XML, found {len(envelopes)}")
            xml = zf.read(envelopes[0])
            errors = schema_errors(xml)
            if errors:
                raise ValueError("envelope invalid against envoi-BP-Generique v1.3.2: "
                                 + "; ".join(errors[:5]))
            entries = []
            for e in entries_of(xml):
                name = e["nom_fichier"]
                if name not in names:
                    raise ValueError(f"entry {e['numero_ordre']}: its PDF is not in the lot")
                pdf = zf.read(name)
                if not pdf.startswith(b"%PDF-"):
                    raise ValueError(f"entry {e['numero_ordre']}: file is not a PDF")
                if e["poids_fichier"] and int(e["poids_fichier"]) != len(pdf):
                    raise ValueError(f"entry {e['numero_ordre']}: poids_fichier is "
                                     f"{e['poids_fichier']}, file has {len(pdf)} bytes")
                key = hashlib.sha256(name.encode()).hexdigest()[:16]  # NIR_SIRET_date
                entries.append({"numero_ordre": e["numero_ordre"],
                                "reference_emetteur": e["reference_emetteur"], "key": key})
            if len({e["key"] for e in entries}) != len(entries):
                raise ValueError("the same pay slip (NIR, SIRET, date) appears twice in the lot")
        return entries

