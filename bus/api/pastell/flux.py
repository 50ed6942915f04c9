"""The incumbent's flux names as the bus's flows: which flow each becomes, how its
fields map to our metadata, which file fields are the main file and the annexes, and
the state names (``last_action``) of each step.

Declarative tables only: ``FLUX`` is read by the routes (``bus.api.pastell``) and by the
README's "Coming from Pastell" section. A flux whose flow the bus does not have is in
``NOT_MAPPED`` and answers as the incumbent does for a type nobody holds a right on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["text", "bool", "int", "date", "list"]


@dataclass(frozen=True)
class Field:
    """One Pastell field held as metadata key ``meta`` (``None``: kept, not sent)."""

    meta: str | None
    kind: Kind = "text"
    required: bool = False
    label: str = ""


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

    @property
    def required(self) -> list[str]:
        return [n for n, f in self.fields.items() if f.required]


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
    "to": Field(None),
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
)}
# the incumbent's flux the bus has no flow for yet (answered as types nobody may use)
NOT_MAPPED = ("ls-mailsec", "ls-mailsec-bidir", "mailsec", "rh-bulletin-salaire",
              "rh-document-individuel", "facture-cpp", "facture-chorus-fournisseur")
# actions the incumbent offers on a draft
DRAFT_ACTIONS = ("modification", "supression")
