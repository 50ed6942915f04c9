"""The incumbent's flux names as the bus's flows: which flow each becomes, how its
fields map to our metadata, which file fields are the main file and the annexes, and
the state names (``last_action``) of each step.

Declarative tables (what no single field holds is made by the flux's ``derive``
function, ``bus.pastell.derive``): ``FLUX`` is read by the door's routes
(``bus.api.pastell``), the Pastell-shaped webhooks (``bus.webhooks.pastell``) and the
README's "Coming from Pastell" section. A flux whose flow the bus does not have is in
``NOT_MAPPED`` and answers as the incumbent does for a type nobody holds a right on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from bus.pastell import derive

Kind = Literal["text", "bool", "int", "date", "list"]


@dataclass(frozen=True)
class Field:
    """One Pastell field held as metadata key ``meta`` (``None``: kept, not sent);
    ``personal``: sealed in the door's store (``bus.pastell.store``)."""

    meta: str | None
    kind: Kind = "text"
    required: bool = False
    label: str = ""
    personal: bool = False


@dataclass(frozen=True)
class StepStates:
    """The incumbent's state names of one bus step: running, succeeded, refused, failed."""

    running: str
    done: str
    rejected: str
    error: str


@dataclass(frozen=True)
class Flux:
    """A Pastell flux served by a bus flow."""

    name: str
    flow: str
    nom: str  # the incumbent's label of the flux
    title: str  # the field copied into ``info.titre``
    fields: dict[str, Field]
    main: str  # the file field holding the main file
    annexes: str | None = None  # the multi-file field of annexes
    final: str = "termine"  # the state of a document the bus completed
    external: tuple[str, ...] = ()  # fields chosen through externalData
    sends: tuple[str, ...] = ("orientation",)  # actions that submit to the bus
    extra_actions: tuple[str, ...] = ()
    # status checks, possible while the bus works on the document (it polls by itself)
    verifs: tuple[str, ...] = ("verif-iparapheur", "verif-sae")
    defaults: dict[str, object] = field(default_factory=dict)  # metadata always sent
    # (data, metadata) -> metadata: what several fields make (``bus.pastell.derive``)
    derive: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]] | None = None
    # data -> the flow a document goes to, when it depends on a field (else ``flow``)
    route: Callable[[dict[str, Any]], str] | None = None
    alternatives: tuple[str, ...] = ()  # the other flows ``route`` may choose
    states: dict[str, StepStates] = field(default_factory=dict)  # by step, over STEP_STATES
    group: str = "Flux Généraux"  # the incumbent's ``type`` of the flux (``GET /flux``)

    @property
    def required(self) -> list[str]:
        return [n for n, f in self.fields.items() if f.required]

    @property
    def personal(self) -> frozenset[str]:
        return frozenset(n for n, f in self.fields.items() if f.personal)

    @property
    def flows(self) -> tuple[str, ...]:
        """Every flow the flux's documents may go to (``flow`` first)."""
        return (self.flow, *[f for f in self.alternatives if f != self.flow])

    def flow_for(self, data: dict[str, Any]) -> str:
        """The flow of a document with fields ``data``."""
        return self.route(data) if self.route is not None else self.flow


SIGN = StepStates("send-iparapheur", "recu-iparapheur", "rejet-iparapheur",
                  "erreur-verif-iparapheur")
TDT = StepStates("send-tdt", "acquiter-tdt", "refus-tdt", "tdt-error")
STEP_STATES: dict[str, StepStates] = {
    "validate": StepStates("orientation", "orientation", "fatal-error", "fatal-error"),
    "sign": SIGN,
    "transmit": TDT,
    "acknowledgement": StepStates("send-tdt", "acquiter-tdt", "erreur-verif-tdt",
                                  "erreur-verif-tdt"),
    "letters": StepStates("acquiter-tdt", "acquiter-tdt", "acquiter-tdt", "acquiter-tdt"),
    "publish": StepStates("send-ged", "send-ged", "error-ged", "error-ged"),
    "deposit": StepStates("send-ged", "send-ged", "error-ged", "error-ged"),
    "archive": StepStates("send-archive", "accepter-sae", "rejet-sae", "erreur-envoie-sae"),
    "archive-batch": StepStates("send-archive", "accepter-sae", "rejet-sae",
                                "erreur-envoie-sae"),
    "seal": SIGN,  # a pay slip's server seal: the incumbent's signature step
    "agent-file": StepStates("send-ged", "send-ged", "error-ged", "error-ged"),
    # secure mail (``pdf-generique``'s and the pay slips' ``send-mailsec``), then the read
    # receipt: ``reception`` once the agent downloaded it, ``non-recu`` if never
    "secure-mail": StepStates("send-mailsec", "send-mailsec", "non-recu", "fatal-error"),
    "mail-receipt": StepStates("send-mailsec", "reception", "non-recu", "fatal-error"),
}
# ``facture-chorus-fournisseur``: deposited on Chorus Pro, then its status followed
CHORUS_STATES = {
    "deposit": StepStates("send-chorus", "send-chorus", "flux-rejete", "fatal-error"),
    "status": StepStates("verif-statut-chorus", "verif-statut-chorus", "flux-rejete",
                         "fatal-error"),
}
# a cancellation (flow acte-followup) of an acte: requested, then acknowledged
CANCEL_STATES = StepStates("annulation-tdt", "annuler-tdt", "erreur-verif-tdt",
                           "erreur-verif-tdt")

_ACTE_FIELDS = {
    "objet": Field("subject", required=True, label="Objet"),
    "numero_de_lacte": Field("number", required=True, label="Numéro de l'acte"),
    "date_de_lacte": Field("decision_date", "date", required=True, label="Date de l'acte"),
    "acte_nature": Field("nature", "int", required=True, label="Nature de l'acte"),
    "classification": Field("classification", required=True, label="Classification"),
    "document_papier": Field("document_papier", "bool"),
    "envoi_signature": Field("sign", "bool"),
    "envoi_signature_check": Field("sign", "bool"),
    "envoi_iparapheur": Field("sign", "bool"),
    "envoi_tdt": Field(None, "bool"),  # the bus always transmits an acte
    "envoi_tdt_actes": Field(None, "bool"),
    "envoi_ged": Field("deposit", "bool"),
    "envoi_depot": Field("deposit", "bool"),
    "envoi_sae": Field(None, "bool"),  # archiving follows the tenant's `sae` connector
    "iparapheur_type": Field(None),
    "iparapheur_sous_type": Field(None),
    "type_acte": Field("main_typology"),
    "type_pj": Field(None, "list"),  # the annexes' typologies (``annexes[i].typology``)
    "type_piece": Field(None, required=True, label="Typologie des pièces"),
}
_DOCUMENT_FIELDS = {
    "libelle": Field("title", required=True, label="Libellé"),
    "envoi_signature": Field("sign", "bool"),
    "envoi_iparapheur": Field("sign", "bool"),
    "iparapheur_type": Field(None),  # the tenant's i-Parapheur connector sets the type
    "iparapheur_sous_type": Field("signature_subtype"),
    "envoi_ged": Field("deposit", "bool"),
    "envoi_ged_1": Field("deposit", "bool"),
    "envoi_depot": Field("deposit", "bool"),
    "envoi_sae": Field("archive", "bool"),
    "envoi_mailsec": Field(None, "bool"),
    "json_metadata": Field(None),
    "to": Field(None, personal=True),  # e-mail addresses
}
_HELIOS_FIELDS = {
    "objet": Field("title", required=True, label="Objet"),
    "envoi_signature": Field("sign", "bool"),
    "envoi_iparapheur": Field("sign", "bool"),
    "envoi_sae": Field("archive", "bool"),
    "envoi_tdt_helios": Field(None, "bool"),
    "iparapheur_type": Field(None),
    "iparapheur_sous_type": Field(None),
}
# the agent, the employer and the document of the HR pack's forms (§2.4)
_AGENT_FIELDS = {
    "titre_document": Field(None),
    "matricule_agent": Field("matricule", required=True, label="Matricule de l'agent"),
    # with nom_usage_agent: agent_name (derive.agent_name)
    "prenom_agent": Field(None, personal=True),
    "nom_usage_agent": Field(None, required=True, label="Nom d'usage de l'agent",
                             personal=True),
    "date_document": Field(None, "date"),
    "metadonnees": Field(None),
}
_PAYSLIP_FIELDS = _AGENT_FIELDS | {
    "nom_naissance_agent": Field("birth_name", personal=True),
    "date_naissance_agent": Field("birth_date", "date", personal=True),
    # optional on the incumbent since 4.0.24; here the only delivery channel the form
    # names, so required (a pay slip goes somewhere: ``derive.payslip``)
    "email_agent": Field("email", required=True, label="Adresse e-mail de l'agent",
                         personal=True),
    "siret_collectivite": Field("employer_siret", required=True,
                                label="SIRET de la collectivité"),
    "nom_collectivite": Field(None),
    "mois_bulletin": Field(None, required=True, label="Mois du bulletin"),
    "annee_bulletin": Field(None, required=True, label="Année du bulletin"),
}
_HR_FIELDS = _AGENT_FIELDS | {
    "email_agent": Field("agent_email", personal=True),
    "type_document": Field(None, required=True, label="Type de document"),
    # the TdT actes step's fields, named as in the actes flux
    "objet": Field("subject", required=True, label="Objet"),
    "numero_de_lacte": Field("number", required=True, label="Numéro de l'acte"),
    "date_de_lacte": Field("decision_date", "date", required=True, label="Date de l'acte"),
    "classification": Field("classification", required=True, label="Classification"),
    "envoi_tdt_actes": Field("transmit", "bool"),
    "iparapheur_sous_type": Field("signature_subtype"),
}
_INVOICE_FIELDS = {
    "numero_facture": Field("invoice_number"),  # read from the invoice when absent
    "depot_type": Field(None),  # the bus reads the file: PDF (Factur-X) or XML
    "syntaxe_flux_in": Field(None),  # the bus detects the syntax from the file
    "envoi_sae": Field("archive", "bool"),
}
_ACTE = {"flow": "acte", "title": "objet", "fields": _ACTE_FIELDS, "main": "arrete",
         "annexes": "autre_document_attache", "external": ("classification", "type_piece"),
         "extra_actions": ("annulation-tdt",), "defaults": {"deposit": False},
         "verifs": ("verif-iparapheur", "verif-tdt", "verif-sae")}
_DOCUMENT = {"flow": "document", "title": "libelle", "fields": _DOCUMENT_FIELDS,
             "main": "document", "annexes": "annexe",
             "external": ("iparapheur_sous_type",),
             "defaults": {"deposit": False, "archive": False}}
_HELIOS = {"flow": "helios", "title": "objet", "fields": _HELIOS_FIELDS,
           "main": "fichier_pes", "defaults": {"sign": False, "archive": False},
           "verifs": ("verif-iparapheur", "verif-tdt", "verif-sae")}

FLUX: dict[str, Flux] = {f.name: f for f in (
    Flux("ls-actes", nom="Actes (studio)", **_ACTE),
    Flux("actes-generique", nom="Actes (générique)", final="acquiter-tdt",
         sends=("orientation", "send-tdt"), **_ACTE),
    Flux("ls-document-pdf", nom="Document PDF (studio)", **_DOCUMENT),
    Flux("ls-document", nom="Document (studio)", **_DOCUMENT),
    Flux("pdf-generique", nom="Document PDF", **_DOCUMENT),
    Flux("document-a-signer", nom="Document à signer",
         sends=("orientation", "send-iparapheur"), **_DOCUMENT),
    Flux("ls-helios", nom="Hélios (studio)", **_HELIOS),
    Flux("helios-generique", nom="Hélios (générique)", final="acquiter-tdt",
         sends=("orientation", "send-tdt"), **_HELIOS),
    Flux("rh-bulletin-salaire", flow="payslip", nom="Bulletin de salaire",
         title="titre_document", fields=_PAYSLIP_FIELDS, main="document", annexes="annexes",
         derive=derive.payslip, verifs=()),
    Flux("rh-document-individuel", flow="hr-decree", nom="Document individuel RH",
         title="titre_document", fields=_HR_FIELDS, main="document", annexes="annexes",
         route=derive.hr_flow, alternatives=("hr-contract",), derive=derive.hr_document,
         external=("classification",), verifs=("verif-iparapheur", "verif-tdt")),
    Flux("facture-chorus-fournisseur", flow="invoice", nom="Facture Chorus fournisseur",
         title="numero_facture", fields=_INVOICE_FIELDS, main="fichier_facture_pdf",
         sends=("send-chorus", "deposer-pdf", "deposer-xml", "orientation"),
         derive=derive.invoice, defaults={"archive": False}, states=CHORUS_STATES,
         group="Finances",
         verifs=("verif-statut-chorus", "verif-sae")),
)}
# the incumbent's flux the bus has no flow for yet (answered as types nobody may use)
# (``facture-cpp``: received invoices come from the bus's own Chorus Pro import, flow
# ``invoice-in``, which no client submits; secure mail: see the README)
NOT_MAPPED = ("ls-mailsec", "ls-mailsec-bidir", "mailsec", "facture-cpp")
# actions the incumbent offers on a draft
DRAFT_ACTIONS = ("modification", "supression")
