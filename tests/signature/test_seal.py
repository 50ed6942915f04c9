"""Local seal: key material, PAdES/XAdES/CMS signatures and their verification."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from lxml import etree
from signxml import DigestAlgorithm, SignatureMethod, XMLSigner, XMLVerifier

from connectors.seal.keys import DEMO_CA_NAME, demo_ca, load_identity
from connectors.seal.local import LocalSeal, SealConfigError, pes_bordereau_ids
from connectors.seal.verify import verify_cms_detached, verify_pdf, verify_xml
from tests.conftest import SHARED
from workers.common.demo import minimal_pdf

TENANT = "216900910"
PES = SHARED / "fixtures" / "pes"


@pytest.fixture(scope="module")
def var(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sealvar")


@pytest.fixture(scope="module")
def seal(var: Path) -> LocalSeal:
    return LocalSeal.from_options({}, var_dir=var)


def test_demo_material_is_named_as_demo_and_reused(seal: LocalSeal, var: Path) -> None:
    ident = seal.identity(TENANT)
    assert ident.demo and "DEMO" in ident.common_name and "not for production" in ident.subject
    assert ident.chain[0].subject.rfc4514_string().endswith(f"CN={DEMO_CA_NAME}")
    again = load_identity({}, var_dir=var, holder=TENANT)
    assert again.cert == ident.cert  # generated once, then read back
    assert "PRIVATE" not in repr(ident) and "key=" not in repr(ident)
    assert sorted(p.name for p in (var / "seal-demo").glob("*.key")) == [
        "DEMO-CA-not-for-production.key", f"seal-{TENANT}-DEMO-not-for-production.key"]


def test_pades_seal_is_intact_and_valid_against_the_demo_ca(seal: LocalSeal, var: Path) -> None:
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    result = asyncio.run(seal.seal(TENANT, minimal_pdf("Bulletin de paie"), "application/pdf"))
    assert result.format == "pades" and result.signer == seal.identity(TENANT).subject
    ca = demo_ca(var).cert.public_bytes(serialization.Encoding.DER)
    from asn1crypto import x509 as asn1_x509

    sig = PdfFileReader(io.BytesIO(result.data)).embedded_signatures[0]
    status = validate_pdf_signature(sig, ValidationContext(
        trust_roots=[asn1_x509.Certificate.load(ca)], allow_fetching=False))
    assert status.intact and status.valid and status.trusted and status.bottom_line
    from asn1crypto import cms

    container = cms.ContentInfo({"content_type": "signed_data",
                                 "content": sig.signed_data}).dump()
    assert result.signature_sha256 == hashlib.sha256(container).hexdigest()
    assert "ENTIRE" in str(status.coverage)
    checks = asyncio.run(verify_pdf(result.data, trust_roots=[demo_ca(var).cert]))
    assert [(c.intact, c.trusted, c.ok) for c in checks] == [(True, True, True)]
    tampered = result.data.replace(b"Bulletin de paie", b"Bulletin de pair")
    bad = asyncio.run(verify_pdf(tampered, trust_roots=[demo_ca(var).cert]))
    assert not bad[0].intact and "modified" in bad[0].error


def test_xades_seal_verifies_with_signxml_and_the_demo_ca(seal: LocalSeal, var: Path) -> None:
    result = asyncio.run(seal.seal(TENANT, b"<?xml version='1.0'?><note n='1'>x</note>",
                                   "application/xml"))
    assert result.format == "xades"
    ca_file = var / "seal-demo" / "DEMO-CA.pem"
    verified = XMLVerifier().verify(result.data, ca_pem_file=str(ca_file),
                                    expect_references=True)
    assert b"<note" in verified[0].signed_data
    [check] = verify_xml(result.data, trust_roots=[demo_ca(var).cert])
    assert check.ok and check.trusted and check.format == "xades" and check.signed_at
    [bad] = verify_xml(result.data.replace(b">x<", b">y<"))
    assert not bad.intact and "Digest" in bad.error


def test_pes_is_signed_per_bordereau_and_stays_schema_valid(seal: LocalSeal, var: Path) -> None:
    data = (PES / "samples" / "PES_ex.xml").read_bytes()
    ids = pes_bordereau_ids(data)
    assert ids == ["SICOVAL120150924160835111"]
    result = asyncio.run(seal.seal(TENANT, data, "application/xml"))
    root = etree.fromstring(result.data)
    bordereau = root.find(".//Bordereau")
    assert etree.QName(bordereau[-1]).localname == "Signature"  # enveloped, last child
    assert result.data.startswith(b"<?xml version='1.0' encoding='ISO-8859-1'?>")
    schema = etree.XMLSchema(etree.parse(str(PES / "xsd" / "PES_V2" / "Rev0" / "PES_Aller.xsd")))
    assert schema.validate(root), schema.error_log
    [check] = verify_xml(result.data, trust_roots=[demo_ca(var).cert])
    assert check.ok and check.reference == f"#{ids[0]}"


def test_sign_elements_signs_each_listed_element(seal: LocalSeal) -> None:
    xml = b"<r><B Id='b1'><v>1</v></B><B Id='b2'><v>2</v></B></r>"
    result = seal.sealer(TENANT).xades_elements(xml, ["b1", "b2"])
    checks = verify_xml(result.data)
    assert [(c.reference, c.intact) for c in checks] == [("#b1", True), ("#b2", True)]
    tampered = verify_xml(result.data.replace(b"<v>2</v>", b"<v>3</v>"))
    assert [c.intact for c in tampered] == [True, False]  # only b2's signature breaks
    with pytest.raises(ValueError, match="element Id 'nope'"):
        seal.sealer(TENANT).xades_elements(xml, ["nope"])


def test_other_files_get_a_detached_cms(seal: LocalSeal, var: Path) -> None:
    result = asyncio.run(seal.seal(TENANT, b"note de service\n", "text/plain"))
    assert result.format == "cms" and result.detached
    check = asyncio.run(verify_cms_detached(b"note de service\n", result.data,
                                            trust_roots=[demo_ca(var).cert]))
    assert check.ok and check.trusted
    other = asyncio.run(verify_cms_detached(b"autre\n", result.data))
    assert not other.intact


def _rsa_pair(tmp_path: Path) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    import datetime as dt

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "Ville test seal")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(7).not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=30)).sign(key, hashes.SHA256()))
    return key, cert


def test_pkcs12_and_pem_material_load_and_secrets_stay_out_of_errors(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key, cert = _rsa_pair(tmp_path)
    p12 = pkcs12.serialize_key_and_certificates(
        b"seal", key, cert, None, serialization.BestAvailableEncryption(b"s3cret-pw"))
    (tmp_path / "seal.p12").write_bytes(p12)
    monkeypatch.setenv("SEAL_PW", "s3cret-pw")
    ident = load_identity({"pkcs12": str(tmp_path / "seal.p12"), "password_env": "SEAL_PW"},
                          var_dir=tmp_path, holder=TENANT)
    assert ident.common_name == "Ville test seal" and not ident.demo
    inline = load_identity({"pkcs12_base64": base64.b64encode(p12).decode(),
                            "password": "s3cret-pw"}, var_dir=tmp_path, holder=TENANT)
    assert inline.cert == cert
    with pytest.raises(SealConfigError) as err:
        load_identity({"pkcs12_base64": base64.b64encode(p12).decode(), "password": "b4d-guess"},
                      var_dir=tmp_path, holder=TENANT)
    assert "pkcs12_base64" in str(err.value) and "b4d-guess" not in str(err.value)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    pem = load_identity({"key_pem": key_pem, "cert_pem": cert.public_bytes(
        serialization.Encoding.PEM).decode()}, var_dir=tmp_path, holder=TENANT)
    assert pem.cert == cert
    seal = LocalSeal.from_options({"key_pem": key_pem, "cert_pem": cert.public_bytes(
        serialization.Encoding.PEM).decode()}, var_dir=tmp_path)
    assert "PRIVATE" not in repr(seal)
    result = asyncio.run(seal.seal(TENANT, minimal_pdf("rsa"), "application/pdf"))
    [check] = asyncio.run(verify_pdf(result.data, trust_roots=[cert]))
    assert check.ok and check.trusted


def test_legacy_rsa_sha1_xml_is_refused_unless_the_legacy_setting_is_on(tmp_path: Path) -> None:
    key, cert = _rsa_pair(tmp_path)
    class LegacySigner(XMLSigner):  # what old producers (and old i-Parapheur) emitted
        def check_deprecated_methods(self) -> None:
            return None

    signer = LegacySigner(signature_algorithm=SignatureMethod.RSA_SHA1,
                          digest_algorithm=DigestAlgorithm.SHA1)
    signed = etree.tostring(signer.sign(etree.fromstring(b"<r Id='x'><a>1</a></r>"),
                                        key=key, cert=[cert.public_bytes(
                                            serialization.Encoding.PEM)]))
    [refused] = verify_xml(signed)
    assert refused.legacy and not refused.ok and "legacy SHA-1" in refused.error
    [accepted] = verify_xml(signed, legacy_sha1=True)
    assert accepted.legacy and accepted.intact and accepted.ok


def test_tsa_option_embeds_rfc3161_timestamps(tmp_path: Path) -> None:
    from connectors.simulator import SimulatorServer
    from connectors.tsa.simulator import TsaSimulator

    with SimulatorServer(TsaSimulator(tmp_path / "tsa").app) as tsa:
        seal = LocalSeal.from_options({"tsa": tsa.base_url + "/"}, var_dir=tmp_path)
        pdf = asyncio.run(seal.seal(TENANT, minimal_pdf("horodate"), "application/pdf"))
        cms_sig = asyncio.run(seal.seal(TENANT, b"note\n", "text/plain"))
    assert pdf.timestamped and cms_sig.timestamped
    [check] = asyncio.run(verify_pdf(pdf.data))
    assert check.intact and check.timestamp and check.signed_at == check.timestamp
    from asn1crypto import cms

    signer_info = cms.ContentInfo.load(cms_sig.data)["content"]["signer_infos"][0]
    kinds = [a["type"].native for a in signer_info["unsigned_attrs"]]
    assert kinds == ["signature_time_stamp_token"]
    assert asyncio.run(verify_cms_detached(b"note\n", cms_sig.data)).intact
    from connectors.errors import TransientError

    down = LocalSeal.from_options({"tsa": "http://127.0.0.1:9/"}, var_dir=tmp_path)
    with pytest.raises(TransientError, match="tsa"):  # retried by the router, not an error
        asyncio.run(down.seal(TENANT, minimal_pdf("x"), "application/pdf"))


def test_later_seals_reuse_the_first_container_as_template_and_stay_valid(
        tmp_path: Path) -> None:
    """The template path gives pyhanko's bytes (RSA is deterministic) and valid seals."""
    key, cert = _rsa_pair(tmp_path)
    pem = {"key_pem": key.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode(),
           "cert_pem": cert.public_bytes(serialization.Encoding.PEM).decode()}
    seal = LocalSeal.from_options(pem, var_dir=tmp_path)
    signer = seal.sealer(TENANT).cms_signer
    digest = hashlib.sha256(b"one document").digest()
    built = asyncio.run(signer.async_sign(digest, "sha256", use_pades=True)).dump()
    [template] = signer._templates.values()
    assert template is not None
    assert asyncio.run(signer.async_sign(digest, "sha256", use_pades=True)).dump() == built
    other = asyncio.run(signer.async_sign(hashlib.sha256(b"two").digest(), "sha256",
                                          use_pades=True)).dump()
    assert other != built and len(other) == len(built)
    for text in ("Bulletin M000001", "Bulletin M000002", "Bulletin M000003"):
        result = asyncio.run(seal.seal(TENANT, minimal_pdf(text), "application/pdf"))
        [check] = asyncio.run(verify_pdf(result.data, trust_roots=[cert]))
        assert check.ok and check.intact and check.trusted
        tampered = result.data.replace(text.encode(), b"Bulletin M999999")
        [bad] = asyncio.run(verify_pdf(tampered, trust_roots=[cert]))
        assert not bad.intact


def test_template_is_not_learnt_from_a_container_with_a_signing_time() -> None:
    import datetime as dt

    from asn1crypto import cms

    from connectors.seal.cms_template import CmsTemplate

    digest = hashlib.sha256(b"x").digest()
    attrs = cms.CMSAttributes([
        cms.CMSAttribute({"type": "content_type", "values": ["data"]}),
        cms.CMSAttribute({"type": "message_digest", "values": [digest]}),
        cms.CMSAttribute({"type": "signing_time", "values": [
            cms.Time({"utc_time": dt.datetime(2026, 12, 1, tzinfo=dt.UTC)})]}),
    ])
    info = cms.ContentInfo({"content_type": "signed_data", "content": cms.SignedData({
        "version": "v1", "digest_algorithms": [{"algorithm": "sha256"}],
        "encap_content_info": {"content_type": "data"},
        "signer_infos": [cms.SignerInfo({
            "version": "v1",
            "sid": cms.SignerIdentifier({"subject_key_identifier": b"k" * 20}),
            "digest_algorithm": {"algorithm": "sha256"}, "signed_attrs": attrs,
            "signature_algorithm": {"algorithm": "sha256_ecdsa"},
            "signature": b"s" * 70})]})})
    assert CmsTemplate.learn(info, digest) is None
    fixed = cms.ContentInfo.load(info.dump())
    fixed["content"]["signer_infos"][0]["signed_attrs"] = cms.CMSAttributes(list(attrs)[:2])
    assert CmsTemplate.learn(fixed, digest) is not None
