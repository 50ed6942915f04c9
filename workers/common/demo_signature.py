"""Demo documents that get signed: sealed locally (PDF, XML) and signed via i-Parapheur."""

from __future__ import annotations

from bus.plugins import REGISTRY
from workers.common.demo import DemoDocument, minimal_pdf

SEAL_TENANT = "216900910"  # demo connector signature: seal (demo CA)
PARAPHEUR_TENANT = "214502494"  # demo connector signature: iparapheur (sim:iparapheur)


@REGISTRY.demo
def signature_documents(index: int) -> list[DemoDocument]:
    """Three documents of the ``document`` flow with ``sign: true`` (round ``index``)."""
    return [
        DemoDocument(
            flow="document", tenant=SEAL_TENANT, label="attestation PDF scellée",
            files={f"attestation-{index}.pdf": minimal_pdf(f"Attestation de residence {index}")},
            metadata={"title": f"Attestation de résidence n°{index}", "category": "attestation",
                      "sign": True}),
        DemoDocument(
            flow="document", tenant=SEAL_TENANT, label="registre XML scellé (XAdES)",
            files={f"registre-{index}.xml": (
                f"<?xml version='1.0' encoding='UTF-8'?><registre n='{index}'>"
                "<entree date='2026-12-01'>Délibération du conseil</entree></registre>"
                ).encode()},
            metadata={"title": f"Registre des délibérations {index}", "category": "registre",
                      "sign": True}),
        DemoDocument(
            flow="document", tenant=PARAPHEUR_TENANT, label="arrêté signé via i-Parapheur",
            files={f"arrete-{index}.pdf": minimal_pdf(f"Arrete du maire {index}")},
            metadata={"title": f"Arrêté du maire n°{index}", "category": "arrete",
                      "sign": True, "signature_subtype": "visa-signature"}),
    ]
