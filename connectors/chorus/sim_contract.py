"""The published Chorus Pro / PISTE contract the simulator enforces: the fields each
service accepts, the shape of its refusals and of its search pages.

Field lists come from Chorus Pro's API annex and the clients that follow it (see
``connectors/README.md``); a body naming another field is refused with HTTP 400 and a
``codeRetour``/``libelle`` body, as Chorus Pro answers a bad request.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

PAGING = frozenset({"nbResultatsMaximum", "nbResultatsParPage", "pageResultatDemandee",
                    "triColonne", "triSens"})
_AMOUNTS = {f"montant{k}{b}" for k in ("Apayer", "HT", "TTC") for b in ("Min", "Max")}
_PERIODS = {f"periodeDate{k}{b}" for k in ("Depot", "Facture", "HeureEtatCourant")
            for b in ("Du", "Au")}

# Top-level fields each service accepts (besides idUtilisateurCourant), and the
# paging object each search takes.
FIELDS: dict[str, frozenset[str]] = {
    "deposer/flux": frozenset({"fichierFlux", "nomFichier", "syntaxeFlux", "avecSignature"}),
    "consulterCRDetaille": frozenset({"numeroFluxDepot", "syntaxeFlux"}),
    "consulterCR": frozenset({"numeroFluxDepot", "dateDepot", "syntaxeFlux"}),
    "rechercher/fournisseur": frozenset({
        "cadreFacturation", "coordonneeBancaire", "idFournisseur", "idServiceFournisseur",
        "idStructureValideur", "idUtilisateurCreateur", "listeDestinataire", "modeDepot",
        "numeroBonCommande", "numeroFacture", "numeroFactureOrigine", "numeroFluxDepot",
        "numeroMarche", "rechercheFactureParFournisseur", "rechercheSirenDestinataire",
        "recupererTaille", "rejetTraite", "statutCourant", "typeFacture",
        *_AMOUNTS, *_PERIODS}),
    "rechercher/recipiendaire": frozenset({
        "cadreFacturation", "factureTelechargeeParDestinataire", "idDestinataire",
        "idServiceExecutant", "idStructureValideur", "listeFournisseurs", "listeTypeFacture",
        "listeTypeFactureTravaux", "numeroBonCommande", "numeroFacture", "numeroMarche",
        "paramRecherche", "rechercheSirenFournisseur", "recupererTaille", "statutCourant",
        "typeDemandePaiement", *_AMOUNTS, *_PERIODS}),
    "consulter/historique": frozenset({
        "idFacture", "idEspace", "nbResultatsMaximum", "paramRechercheHistoStatuts",
        "paramRechercheHistoActionsUtilisateurs",
        "paramRechercheHistoEvenementsComplementaires"}),
    "telecharger/groupe": frozenset({"listeFacture", "format", "idEspace",
                                     "avecPiecesJointesComplementaires"}),
    "traiter/recue": frozenset({"idFacture", "nouveauStatut", "motif", "numeroDPMandat"}),
}
PAGING_OBJECT = {"rechercher/fournisseur": "rechercheFactureParFournisseur",
                 "rechercher/recipiendaire": "paramRecherche"}
DOWNLOAD_FORMATS = frozenset({"PDF", "XML", "ZIP"})

OK_LIBELLE = "TRA_MSG_00.000"
NO_RESULT = (20000, "TRA_MSG_00.015")  # "la recherche n'a retourné aucun résultat"

# codeRetour of the simulator's own refusals (the annex numbers each service's
# errors from 20001; which number goes with which refusal is not verified).
BAD_BODY = 20001
BAD_VALUE = 20002
UNKNOWN = 20003
NOT_ALLOWED = 20004


def ok(**fields: Any) -> JSONResponse:
    return JSONResponse({"codeRetour": 0, "libelle": OK_LIBELLE, **fields})


def refusal(status: int, code: int, message: str) -> JSONResponse:
    """Chorus Pro's refusal: HTTP 4xx with ``codeRetour`` and ``libelle``."""
    return JSONResponse({"codeRetour": code, "libelle": message}, status_code=status)


def gateway_refusal(status: int, message: str, detail: str) -> JSONResponse:
    """PISTE's own refusal (its API gateway), before Chorus Pro is reached."""
    return JSONResponse({"httpCode": str(status), "httpMessage": message,
                         "moreInformation": detail}, status_code=status)


def check_body(service: str, body: Any) -> JSONResponse | None:
    """A 400 naming the first field the service does not know, or a bad paging object."""
    if not isinstance(body, dict):
        return refusal(400, BAD_BODY, "Le corps de la requête doit être un objet JSON")
    allowed = FIELDS[service] | {"idUtilisateurCourant"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        return refusal(400, BAD_BODY, f"Champ inconnu : {unknown[0]}")
    paging = PAGING_OBJECT.get(service)
    if paging and paging in body:
        value = body[paging]
        if not isinstance(value, dict) or set(value) - PAGING:
            extra = sorted(set(value) - PAGING) if isinstance(value, dict) else [paging]
            return refusal(400, BAD_BODY, f"Champ inconnu : {paging}.{extra[0]}")
        for key in ("nbResultatsParPage", "pageResultatDemandee"):
            if key in value and (not isinstance(value[key], int) or value[key] < 1):
                return refusal(400, BAD_VALUE, f"{paging}.{key} doit être un entier positif")
    return None


def page_of(rows: list[Any], body: dict[str, Any], service: str) -> tuple[list[Any], dict]:
    """The requested page of ``rows`` and its ``pageCourante``/``pages`` figures."""
    paging = body.get(PAGING_OBJECT[service]) or {}
    size = int(paging.get("nbResultatsParPage") or 10)
    page = int(paging.get("pageResultatDemandee") or 1)
    pages = max(1, -(-len(rows) // size))
    return rows[(page - 1) * size: page * size], {
        "pageCourante": page, "pages": pages, "nbResultatsParPage": size, "total": len(rows)}


def int_field(body: dict[str, Any], name: str) -> int | JSONResponse:
    """``body[name]`` as an integer identifier, or the 400 naming it."""
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        return refusal(400, BAD_VALUE, f"{name} est obligatoire et doit être un entier")
    return value
