"""Before: the request our ENSAP client sent until now (a ZIP with ``<lot>.xml``,
AES-GCM frames under an RSA-OAEP-wrapped key in ``X-Ensap-*`` headers, the key taken
from ``GET /ensap/certificate``, envelope ``nom_fichier`` ``ENVOI-PJ-BPG-43-<code>-<lot>-
<YYYYMM>-<DDMMYYYY>``) gets refused by the simulator of ENSAP's package contract."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import zipfile

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from connectors.ensap.simulator import EnsapSimulator
from connectors.frames import FrameSealer, frames_of, seal_frames
from workers.common.demo import minimal_pdf

OLD_NAME = "ENVOI-PJ-BPG-43-216900910-216900910run1-202611-02122026"


def _old_request() -> tuple[dict[str, str], bytes]:
    """The old package, sealed as the old client did (to an RSA key of its own here:
    the new ENSAP has no X.509 certificate to give)."""
    pdf = minimal_pdf("bulletin")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("216900910-run1.xml", f"<envoi-BP-Generique><message><nom_fichier>"
                    f"{OLD_NAME}</nom_fichier></message></envoi-BP-Generique>")
        zf.writestr("1870194035088_21690091000011_BPaie_01112026.pdf", pdf)
    data = buf.getvalue()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    dek = os.urandom(32)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(),
                        label=None)
    wrapped = key.public_key().encrypt(dek, oaep)
    digest = hashlib.sha256(data).hexdigest()
    sealer = FrameSealer(dek, b"ENSAP-PKG-1|" + wrapped + digest.encode())
    body = b"".join(seal_frames(sealer, frames_of(io.BytesIO(data), len(data))))
    return {"X-Ensap-Key-Transport": "RSA-OAEP-256",
            "X-Ensap-Wrapped-Key": base64.b64encode(wrapped).decode(),
            "X-Ensap-Recipient": "0" * 64, "X-Ensap-Package-Sha256": digest,
            "Content-Type": "application/octet-stream"}, body


@pytest.fixture(scope="module")
def url():
    sim = EnsapSimulator()
    server = sim.serve()
    yield server.base_url
    server.stop()


def test_before_the_x509_certificate_is_gone(url: str) -> None:
    assert httpx.get(f"{url}/ensap/certificate").status_code == 404
    assert b"BEGIN PGP PUBLIC KEY BLOCK" in httpx.get(f"{url}/ensap/public-key").content


def test_before_the_old_package_is_refused(url: str) -> None:
    headers, body = _old_request()
    resp = httpx.put(f"{url}/ensap/lots/216900910-run1", content=body, headers=headers)
    assert resp.status_code == 422 and "package name '(none)'" in resp.json()["reason"]
    named = headers | {"Content-Disposition": f'attachment; filename="{OLD_NAME}.tar.gz.gpg"'}
    resp = httpx.put(f"{url}/ensap/lots/216900910-run1", content=body, headers=named)
    assert resp.status_code == 422 and OLD_NAME in resp.json()["reason"]  # old name form
    good_name = "ENVOI-PJ-BPG-43-SIM-21690-202611-021226143005"
    named["Content-Disposition"] = f'attachment; filename="{good_name}.tar.gz.gpg"'
    resp = httpx.put(f"{url}/ensap/lots/216900910-run1", content=body, headers=named)
    assert resp.status_code == 422 and "does not decrypt" in resp.json()["reason"]
    assert httpx.get(f"{url}/ensap/lots/216900910-run1").status_code == 404
