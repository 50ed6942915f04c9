"""An RFC 3161 time-stamping authority over HTTP, with failure injection.

``POST /`` takes ``application/timestamp-query`` and answers
``application/timestamp-reply``; its tokens verify with ``openssl ts -verify``.
Its CA and TSA keys (ECDSA P-256) are made on first start and kept in
``keys_dir`` (``ca.pem`` is the trust anchor to give verifiers); submissions are
counted per message imprint (``GET /_sim/counts``).
"""

from __future__ import annotations

import hashlib
import itertools
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from asn1crypto import cms, core, tsp, x509
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from fastapi import FastAPI, Request, Response

from connectors.private import private_dir, tighten, write_private
from connectors.simulator import FailurePlan, HttpSimulator, SubmissionCounter
from connectors.tsa.token import HASHES

QUERY, REPLY = "application/timestamp-query", "application/timestamp-reply"
POLICY = f"2.25.{uuid.UUID('6f1d3c7e-8a4b-4e0f-9b2a-d3e5c1a7f900').int}"  # demo policy OID


class TsaKeys:
    """A CA and the TSA certificate it issued (critical EKU timeStamping)."""

    def __init__(self, keys_dir: Path) -> None:
        self.dir = private_dir(keys_dir)
        if not (self.dir / "tsa.pem").exists():
            self._create()
        tighten(self.dir / "tsa-key.pem")  # world-readable when made by an older bus
        self.ca_pem = (self.dir / "ca.pem").read_bytes()
        self.cert_pem = (self.dir / "tsa.pem").read_bytes()
        self.key = serialization.load_pem_private_key(
            (self.dir / "tsa-key.pem").read_bytes(), None)
        self.cert = x509.Certificate.load(
            cx509.load_pem_x509_certificate(self.cert_pem).public_bytes(
                serialization.Encoding.DER))

    def _create(self) -> None:
        now = datetime.now(UTC) - timedelta(minutes=5)
        ca_key, tsa_key = ec.generate_private_key(ec.SECP256R1()), \
            ec.generate_private_key(ec.SECP256R1())
        ca_name = _name("demat-bus demo TSA CA")
        ca = (cx509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
              .public_key(ca_key.public_key()).serial_number(cx509.random_serial_number())
              .not_valid_before(now).not_valid_after(now + timedelta(days=3650))
              .add_extension(cx509.BasicConstraints(ca=True, path_length=0), critical=True)
              .add_extension(cx509.KeyUsage(False, False, False, False, False, True, True,
                                            False, False), critical=True)
              .sign(ca_key, hashes.SHA256()))
        tsa = (cx509.CertificateBuilder().subject_name(_name("demat-bus demo TSA"))
               .issuer_name(ca_name).public_key(tsa_key.public_key())
               .serial_number(cx509.random_serial_number())
               .not_valid_before(now).not_valid_after(now + timedelta(days=1825))
               .add_extension(cx509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(cx509.KeyUsage(True, True, False, False, False, False, False,
                                             False, False), critical=True)
               .add_extension(cx509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]),
                              critical=True)
               .sign(ca_key, hashes.SHA256()))
        pem = serialization.Encoding.PEM
        key_pem = tsa_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
        write_private(self.dir / "tsa-key.pem", key_pem)
        write_private(self.dir / "ca.pem", ca.public_bytes(pem))
        write_private(self.dir / "tsa.pem", tsa.public_bytes(pem))  # written last: complete


def _name(cn: str) -> cx509.Name:
    return cx509.Name([cx509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
                       cx509.NameAttribute(NameOID.ORGANIZATION_NAME, "demat-bus"),
                       cx509.NameAttribute(NameOID.COMMON_NAME, cn)])


class TsaSimulator(HttpSimulator):
    """The app, its keys, its failure plan and its per-imprint counter."""

    title = "RFC 3161 TSA simulator"

    def counts(self) -> dict[str, Any]:
        return {"stamps": self.stamps.snapshot(), "duplicates": self.stamps.duplicates()}


    def __init__(self, keys_dir: Path, failures: FailurePlan | None = None) -> None:
        self.keys = TsaKeys(keys_dir)
        super().__init__(failures)
        self.stamps = SubmissionCounter()
        self._serial = itertools.count(time.time_ns())
        self.app = self._build()

    def _build(self) -> FastAPI:
        app = self.new_app()
        sim = self

        @app.get("/_sim/ca.pem")
        async def ca() -> Response:
            return Response(sim.keys.ca_pem, media_type="application/x-pem-file")

        @app.post("/")
        async def stamp(request: Request) -> Response:
            if request.headers.get("content-type", "").split(";")[0].strip() != QUERY:
                return Response(f"expected Content-Type {QUERY}", status_code=415)
            await sim.failures.apply()
            return Response(sim.respond(await request.body()), media_type=REPLY)

        return app

    def respond(self, der: bytes) -> bytes:
        """The DER ``TimeStampResp`` answering a DER ``TimeStampReq``."""
        try:
            req = tsp.TimeStampReq.load(der)
            algo = req["message_imprint"]["hash_algorithm"]["algorithm"].native
            digest = req["message_imprint"]["hashed_message"].native
        except (ValueError, TypeError):
            return _refusal("bad_data_format", "malformed TimeStampReq")
        if algo not in HASHES or len(digest) != HASHES[algo].digest_size:
            return _refusal("bad_alg", f"unsupported hash algorithm {algo}")
        if req["req_policy"].native not in (None, POLICY):
            return _refusal("unaccepted_policy", "unknown policy")
        self.stamps.add(digest.hex())
        info = tsp.TSTInfo({
            "version": "v1", "policy": POLICY, "message_imprint": req["message_imprint"],
            "serial_number": next(self._serial),
            "gen_time": datetime.now(UTC).replace(microsecond=0),
            "accuracy": {"seconds": 1},
            "nonce": req["nonce"].native,
            "tsa": x509.GeneralName(name="directory_name", value=self.keys.cert.subject),
        })
        token = self._sign(info.dump(), with_cert=bool(req["cert_req"].native))
        return tsp.TimeStampResp({"status": {"status": "granted"},
                                  "time_stamp_token": token}).dump()

    def _sign(self, tst: bytes, *, with_cert: bool) -> cms.ContentInfo:
        cert = self.keys.cert
        attrs = cms.CMSAttributes([
            {"type": "content_type", "values": ["tst_info"]},
            {"type": "message_digest", "values": [hashlib.sha256(tst).digest()]},
            {"type": "signing_certificate_v2", "values": [{"certs": [{
                "hash_algorithm": {"algorithm": "sha256"},
                "cert_hash": hashlib.sha256(cert.dump()).digest(),
            }]}]},
        ])
        signature = self.keys.key.sign(attrs.dump(), ec.ECDSA(hashes.SHA256()))
        signer = cms.SignerInfo({
            "version": "v1",
            "sid": {"issuer_and_serial_number": {"issuer": cert.issuer,
                                                 "serial_number": cert.serial_number}},
            "digest_algorithm": {"algorithm": "sha256"},
            "signed_attrs": attrs,
            "signature_algorithm": {"algorithm": "sha256_ecdsa"},
            "signature": signature,
        })
        signed = cms.SignedData({
            "version": "v3",
            "digest_algorithms": [{"algorithm": "sha256"}],
            "encap_content_info": {"content_type": "tst_info",
                                   "content": core.ParsableOctetString(tst)},
            "certificates": [cert] if with_cert else None,
            "signer_infos": [signer],
        })
        return cms.ContentInfo({"content_type": "signed_data", "content": signed})


def _refusal(fail_info: str, text: str) -> bytes:
    """A TimeStampResp with no token (asn1crypto's model makes the token mandatory)."""
    status = tsp.PKIStatusInfo({"status": "rejection", "status_string": [text],
                                "fail_info": tsp.PKIFailureInfo({fail_info})}).dump()
    return core.Sequence.load(b"\x30" + _der_length(len(status)) + status).dump()


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw
