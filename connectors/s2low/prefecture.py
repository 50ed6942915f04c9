"""The prefecture's side of the S²LOW simulator: transactions, their life cycle and the
scenario each acte follows (acknowledged, refused, letters...), the registers of actes."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from lxml import etree

from connectors.s2low import actes as A
from connectors.s2low.client import ActesStatus, TransactionType
from schemas.acte import (
    ActeMetadata,
    ActeNature,
    Classification,
    ClassificationNature,
    TenantActesSettings,
)

SCENARIOS = ("ack", "anomaly", "envelope", "refused", "error", "stuck", "archive",
             "courrier", "pieces", "observations", "defere")
LETTER_OF = {"courrier": (TransactionType.COURRIER_SIMPLE, "CourrierSimple"),
             "pieces": (TransactionType.DEMANDE_PIECES, "DemandePieceComplementaire"),
             "observations": (TransactionType.LETTRE_OBSERVATIONS, "LettreObservations"),
             "defere": (TransactionType.DEFERE_TA, "DefereTA")}
ANSWER_KIND = {(2, "4"): "ReponseCourrierSimple", (2, "3"): "ReponseCourrierSimple",
               (3, "3"): "RefusPieceComplementaire", (3, "4"): "PieceComplementaire",
               (4, "3"): "RejetLettreObservations", (4, "4"): "ReponseLettreObservations"}
AR_OF_ANSWER = {3: "ARPieceComplementaire", 4: "ARReponseRejetLettreObservations"}
DUPLICATE = ("Un acte portant le même numéro interne existe déjà dans la base de données.\n"
             "Il faut peut-être ajouter un suffixe au numéro.")
MARKER = re.compile(r"\[sim:([a-z]+)\]")

DEFAULT_AUTHORITY = TenantActesSettings(
    siren="216900910", departement="069", arrondissement=1, nature_autorite="32",
    referent={"name": "Service assemblées", "phone": "0400000000",
              "email": "assemblees@mairie.example.fr"},
    return_emails=["actes@mairie.example.fr"])


def default_classification() -> Classification:
    natures = [ClassificationNature(code=int(n), label=n.name.title(), short=n.code,
                                    typologies={n.default_typology: "Acte", "99_AU": "Autre",
                                                "41_NC": "Note de synthèse"})
               for n in ActeNature]
    return Classification(version_date=date(2025, 1, 1), natures=natures, subjects={
        "1": "Commande publique", "1.1": "Marchés publics", "3": "Domaine et patrimoine",
        "3.2": "Alienations", "4": "Fonction publique",
        "4.1": "Personnels titulaires et stagiaires de la FPT", "4.2": "Personnels contractuels",
        "5": "Institutions et vie politique", "5.2": "Fonctionnement",
        "7": "Finances locales", "7.1": "Décisions budgétaires", "9": "Autres domaines",
        "9.1": "Autres domaines de compétences"})


@dataclass
class SimTransaction:
    """One transaction as S²LOW keeps it."""

    id: int
    type: int
    number: str
    decision_date: date
    nature: ActeNature
    subject: str
    files: dict[str, bytes]
    form_name: str
    envelope_id: int
    created: float
    scenario: str = "ack"
    related_id: int | None = None
    unique_id: str | None = None
    history: list[tuple[int, str, bytes | None]] = field(default_factory=list)
    plan: list[Callable[[SimTransaction], None]] = field(default_factory=list)
    done: int = 0
    authority: TenantActesSettings = field(default_factory=lambda: DEFAULT_AUTHORITY)

    @property
    def status(self) -> int:
        return self.history[-1][0]

    def flux(self, status: int) -> bytes | None:
        return next((f for s, _, f in reversed(self.history) if s == status and f), None)

    def set(self, status: int, message: str = "", flux: bytes | None = None) -> None:
        self.history.append((status, message, flux))


def anomalie_enveloppe(tx: SimTransaction, on: date, nature: str, detail: str) -> bytes:
    """The ministry's ``AnomalieEnveloppe`` about the envelope that carried ``tx``."""
    a, i = f"{{{A.NS}}}", f"{{{A.INSEE_NS}}}"
    root = etree.Element(f"{a}AnomalieEnveloppe", nsmap={"actes": A.NS, "insee": A.INSEE_NS})
    etree.SubElement(root, f"{a}Date").text = on.isoformat()
    etree.SubElement(root, f"{a}Nature").text = nature
    etree.SubElement(root, f"{a}Detail").text = detail
    received = etree.SubElement(root, f"{a}EnveloppeRecue")
    sender = etree.SubElement(received, f"{a}Emetteur")
    etree.SubElement(sender, f"{a}IDCL", {
        f"{a}Departement": tx.authority.departement, f"{i}SIREN": tx.authority.siren,
        f"{a}Arrondissement": str(tx.authority.arrondissement),
        f"{a}Nature": tx.authority.nature_autorite})
    forms = etree.SubElement(received, f"{a}FormulairesEnvoyes")
    etree.SubElement(etree.SubElement(forms, f"{a}Formulaire"), f"{a}NomFichier").text = \
        tx.form_name
    return etree.tostring(root, xml_declaration=True, encoding="ISO-8859-1")


class PrefectureSide:
    """Transactions and the prefecture's answers (mixed into ``S2lowSimulator``, which
    holds the state these methods use: ``transactions``, ``lock``, ``step_delay``...)."""

    # ------------------------------------------------------------ life cycle

    def _advance(self) -> None:
        now = time.monotonic()
        with self.lock:
            for tx in list(self.transactions.values()):
                steps = (len(tx.plan) if self.step_delay <= 0
                         else int((now - tx.created) / self.step_delay))
                while tx.done < min(steps, len(tx.plan)):
                    tx.plan[tx.done](tx)
                    tx.done += 1

    def _new_tx(self, kind: int, *, number: str, decision_date: date, nature: ActeNature,
                subject: str, files: dict[str, bytes], form_name: str, envelope: tuple[str, bytes],
                related_id: int | None = None, status: int = ActesStatus.POSTED,
                authority: TenantActesSettings | None = None) -> SimTransaction:
        with self.lock:
            tid = max(self.transactions, default=0) + 1
            env_id = max(self.archives, default=0) + 1
            self.archives[env_id] = envelope
            tx = SimTransaction(id=tid, type=kind, number=number, decision_date=decision_date,
                                nature=nature, subject=subject, files=files, form_name=form_name,
                                envelope_id=env_id, created=time.monotonic(),
                                related_id=related_id, authority=authority or self.authority)
            tx.set(status, "Posté" if status == ActesStatus.POSTED else "")
            self.transactions[tid] = tx
            return tx

    def _transmission_steps(self) -> list[Callable[[SimTransaction], None]]:
        return [lambda t: t.set(ActesStatus.WAITING_TRANSMISSION, "En attente de transmission"),
                lambda t: t.set(ActesStatus.TRANSMITTED, "Transmis au MI")]

    def _acte_plan(self, tx: SimTransaction) -> None:
        outcome: dict[str, Callable[[SimTransaction], None]] = {
            "anomaly": self._anomaly, "envelope": self._envelope_anomaly,
            "refused": lambda t: t.set(ActesStatus.REFUSED, "Refusé"),
            "error": lambda t: t.set(ActesStatus.ERROR, "Erreur lors de la transmission"),
        }
        tx.plan = self._transmission_steps()
        if tx.scenario == "stuck":
            return
        tx.plan.append(outcome.get(tx.scenario, self._acknowledge))
        if tx.scenario in LETTER_OF:
            tx.plan.append(self._send_letter)
        if tx.scenario == "archive":  # archived after its acknowledgement: 19, 12, 13
            tx.plan += [lambda t: t.set(ActesStatus.WAITING_SAE,
                                        "En attente de transmission au SAE"),
                        lambda t: t.set(ActesStatus.SENT_TO_SAE, "Envoyé au SAE"),
                        lambda t: t.set(ActesStatus.SAE_ARCHIVED, "Archivé par le SAE")]

    def _acknowledge(self, tx: SimTransaction) -> None:
        tx.unique_id = A.official_id(tx.authority.departement, tx.authority.siren,
                                     tx.decision_date, tx.number, tx.nature)
        ar = A.assert_valid(A.build_aracte(tx.files[tx.form_name], tx.unique_id, date.today(),
                                           self.classification.version_date), "ARActe")
        tx.set(ActesStatus.ACK_RECEIVED, f"Reçu par le MI le {date.today():%Y-%m-%d}", ar)

    def _anomaly(self, tx: SimTransaction) -> None:
        xml = A.assert_valid(A.build_anomalie_acte(
            tx.files[tx.form_name], date.today(), "002",
            "La classification matières/sous-matières n'est pas valide",
            self.classification.version_date), "AnomalieActe")
        tx.set(ActesStatus.ERROR, "Anomalie reçue de la préfecture", xml)

    def _envelope_anomaly(self, tx: SimTransaction) -> None:
        tx.set(ActesStatus.ERROR, "Anomalie enveloppe reçue de la préfecture",
               anomalie_enveloppe(tx, date.today(), "5", "PREF-VERIF-02 : Votre numéro de "
                                  "SIREN n'est pas encore enregistré dans l'application ACTES."))

    def _send_letter(self, acte: SimTransaction) -> None:
        kind, root = LETTER_OF[acte.scenario]
        assert acte.unique_id
        base = acte.unique_id
        msg = f"{int(kind)}-1"
        form_name = A.message_file_name(base, msg, 0, "xml")
        pdf_name = A.message_file_name(base, msg, 1, "pdf")
        today = date.today()
        if kind == TransactionType.DEFERE_TA:
            xml = A.build_defere(base, today, "Incompétence de l'auteur de l'acte", [pdf_name])
        else:
            xml = A.build_courrier(root, base, today, pdf_name,
                                   "Merci de transmettre le budget annexe")
        files = {form_name: A.assert_valid(xml, root),
                 pdf_name: b"%PDF-1.4\n% courrier de la prefecture\n%%EOF\n"}
        who = acte.authority
        envelope_name = A.envelope_file_name(who.siren, today, self._next_serial(), "PREF")
        files[envelope_name] = A.assert_valid(A.build_envelope_misillcl(
            who.departement, who.arrondissement, who.siren,
            [form_name]), "EnveloppeMISILLCL")
        archive = A.pack(A.ArchiveFile(name=n, data=d) for n, d in files.items())
        with_ar = kind in (TransactionType.DEMANDE_PIECES, TransactionType.LETTRE_OBSERVATIONS)
        letter = self._new_tx(int(kind), number=acte.number, decision_date=today,
                              nature=acte.nature, subject=acte.subject, files=files,
                              form_name=form_name, related_id=acte.id,
                              envelope=(f"{self.trigramme}-{envelope_name[:-4]}.tar.gz", archive),
                              status=ActesStatus.LETTER_AR_SENT if with_ar
                              else ActesStatus.LETTER_NO_AR, authority=who)
        letter.history[-1] = (letter.status, "Document reçu de la préfecture", xml)
        letter.unique_id = acte.unique_id
        letter.done = len(letter.plan)

    def _next_serial(self) -> int:
        with self.lock:
            self._serial += 1
            return self._serial

    # ------------------------------------------------------------ endpoints

    def _register_acte(self, meta: ActeMetadata | A.ActeRecu, archive_name: str,
                       archive: bytes, form_name: str, who: TenantActesSettings
                       ) -> SimTransaction:
        files = A.unpack(archive)
        subject = meta.subject
        tx = self._new_tx(TransactionType.ACTE, number=meta.number,
                          decision_date=meta.decision_date, nature=ActeNature(meta.nature),
                          subject=subject, files=files, form_name=form_name,
                          envelope=(archive_name, archive), authority=who)
        marker = MARKER.search(subject)
        tx.scenario = self.scenarios.get(meta.number) or (marker[1] if marker else
                                                          self.default_scenario)
        self._acte_plan(tx)
        return tx

    def _find(self, number: str, siren: str) -> SimTransaction | None:
        return next((t for t in self.transactions.values()
                     if t.type == TransactionType.ACTE and t.number == number
                     and t.authority.siren == siren), None)

    def _tx(self, value: Any, kind: int | None = None) -> SimTransaction | None:
        try:
            tx = self.transactions.get(int(str(value)))
        except ValueError:
            return None
        return tx if tx and (kind is None or tx.type == kind) else None
