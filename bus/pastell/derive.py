"""Bus metadata that no single Pastell field holds: made from several fields of a form
(a pay slip's period from its month and year, the agent's name from first and last
names) or fixed by the flux (the pay slip's delivery channel). Each raises
``SubmissionError`` naming the Pastell field at fault, never quoting a personal value."""

from __future__ import annotations

from typing import Any, get_args

from bus.intake import SubmissionError
from schemas.hr import ContractType, DecreeType

DECREE_TYPES: tuple[str, ...] = get_args(DecreeType)
CONTRACT_TYPES: tuple[str, ...] = get_args(ContractType)


def _text(data: dict[str, Any], name: str) -> str:
    return str(data.get(name, "")).strip()


def agent_name(data: dict[str, Any]) -> str:
    """``prenom_agent nom_usage_agent``, as one name."""
    return " ".join(n for n in (_text(data, "prenom_agent"), _text(data, "nom_usage_agent"))
                    if n)


def payslip(data: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """The period (``annee_bulletin``-``mois_bulletin``), the agent's name, and the one
    channel the form names: secure mail to ``email_agent``."""
    year, month = _text(data, "annee_bulletin"), _text(data, "mois_bulletin")
    if not (len(year) == 4 and year.isdigit()):
        raise SubmissionError("annee_bulletin", "une année sur 4 chiffres est attendue")
    if not (month.isdigit() and 1 <= int(month) <= 12):
        raise SubmissionError("mois_bulletin", "un mois de 1 à 12 est attendu")
    return meta | {"period": f"{year}-{int(month):02d}", "agent_name": agent_name(data),
                   "channels": ["secure-mail"]}


def hr_flow(data: dict[str, Any]) -> str:
    """The bus flow of an individual HR document by its ``type_document``: a decree's
    type makes an ``hr-decree``, a contract's an ``hr-contract``."""
    kind = _text(data, "type_document")
    if kind in CONTRACT_TYPES:
        return "hr-contract"
    if kind in DECREE_TYPES or not kind:
        return "hr-decree"
    raise SubmissionError("type_document", f"type inconnu {kind!r} (décisions : "
                          f"{', '.join(DECREE_TYPES)} ; contrats : {', '.join(CONTRACT_TYPES)})")


def hr_document(data: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """The agent's name and the act type (checked by ``hr_flow``)."""
    hr_flow(data)
    return meta | {"agent_name": agent_name(data), "act_type": _text(data, "type_document")}


def invoice(data: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """The invoice's title is its number (the incumbent's title field)."""
    return meta | {"title": _text(data, "numero_facture")}
