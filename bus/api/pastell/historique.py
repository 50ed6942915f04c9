"""``iparapheur_historique``: the i-Parapheur log of a signed (or refused) document in the
shape of i-Parapheur's ``GetHistoDossier`` answer, which Maarch Courrier and
Pastell-Ponts parse: ``LogDossier`` entries (``timestamp``, ``nom``, ``status``,
``annotation``) and a ``MessageRetour`` (``codeRetour``, ``message``, ``severite``).
Made from what the bus's ``sign`` step recorded (its signers, or the refusal)."""

from __future__ import annotations

from typing import Any

from lxml import etree

from schemas.messages import DocState, DocumentState

HISTORY = "iparapheur_historique"  # the file field
# i-Parapheur's status of each action the bus records
STATUS = {"VISA": "Vise", "SIGNATURE": "Signe", "SEAL": "Signe",
          "EXTERNAL_SIGNATURE": "Signe"}
REFUSED = "RejetSignataire"


def _entry(root: etree._Element, when: str, name: str, status: str, note: str) -> None:
    log = etree.SubElement(root, "LogDossier")
    for tag, text in (("timestamp", when), ("nom", name), ("status", status),
                      ("annotation", note), ("accessible", "OK")):
        etree.SubElement(log, tag).text = text


def historique(state: DocumentState | None) -> bytes | None:
    """The log, or ``None`` when i-Parapheur has not answered for this document yet."""
    record = state.latest("sign") if state is not None else None
    if state is None or record is None:
        return None
    output: dict[str, Any] = record.output or {}
    refused = state.state == DocState.REJECTED and state.current_step == "sign"
    if output.get("mode") != "iparapheur" and not refused:
        return None
    root = etree.Element("GetHistoDossierResponse")
    for signer in output.get("signers", []):
        _entry(root, str(signer.get("at") or ""), str(signer.get("signer") or ""),
               STATUS.get(str(signer.get("action")), "Signe"), str(signer.get("desk") or ""))
    if refused:
        assert state.error is not None
        _entry(root, state.updated_at.isoformat(), "", REFUSED, state.error.message)
    answer = etree.SubElement(root, "MessageRetour")
    for tag, text in (("codeRetour", "OK"), ("message", ""), ("severite", "INFO")):
        etree.SubElement(answer, tag).text = text
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
