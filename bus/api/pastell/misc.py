"""``/api/v2``: version, entities, flux, connectors and flux associations (read-only)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from bus.api.pastell.documents import Who, door_of, entity_row
from bus.api.pastell.http import PastellError, PastellRoute, pastell_json, read_params
from bus.api.pastell.model import Door
from bus.pastell.flux import FLUX, STEP_STATES, Flux

router = APIRouter(prefix="/api/v2", route_class=PastellRoute, include_in_schema=False)
# connector roles of a tenant as the incumbent's connector families
FAMILIES = {"signature": "signature", "seal": "signature", "s2low": "TdT", "ged": "GED",
            "sae": "SAE", "secure-mail": "mailsec", "chorus": "PortailFacture",
            "publication": "GED", "agent-file": "GED", "agent-space": "GED",
            "finance": "GED", "ensap": "CFN"}


def _version() -> str:
    try:
        return version("demat-bus")
    except PackageNotFoundError:
        return "0"


@router.get("/version")
async def get_version(who: Who) -> Response:
    found = _version()
    return pastell_json({"version": found, "revision": found, "last_changed_date": "",
                         "extensions_versions_accepted": [],
                         "version_complete": f"demat-bus {found} (API Pastell v2)"})


@router.get("/version/allo")
async def allo(who: Who) -> Response:
    return pastell_json({"produit": "Pastell", "version": _version()})


async def _entity(door: Door, siren: str) -> dict[str, Any]:
    tenant = door.tenants.get(siren)
    return {"id_e": await door.id_e(siren), "type": "collectivite", **await entity_row(
        door, siren)} | {"denomination": tenant.name}


@router.get("/entite")
async def entities(request: Request, who: Who) -> Response:
    door = door_of(request, who)
    return pastell_json([await _entity(door, s) for s in sorted(who.reaches(door.tenants))])


@router.get("/entite/{id_e}")
async def entity(request: Request, who: Who, id_e: str) -> Response:
    door = door_of(request, who)
    siren = await door.entity(id_e)
    children = [s.siren for s in door.tenants if s.parent == siren]
    return pastell_json(await _entity(door, siren) | {
        "entite_fille": [{"id_e": await door.id_e(c)} for c in children]})


@router.get("/flux")
async def flux_list(request: Request, who: Who) -> Response:
    door = door_of(request, who)
    reached = who.reaches(door.tenants)
    usable = {f.name: {"type": f.group, "nom": f.nom} for f in FLUX.values()
              if any(door.reads(s) and door.uses(s, f) for s in reached)}
    return pastell_json(dict(sorted(usable.items(), key=lambda item: item[1]["nom"])))


def _known(name: str) -> Flux:
    if name not in FLUX:
        raise PastellError(404, f"Le flux {name} n'existe pas sur cette plateforme")
    return FLUX[name]


@router.get("/flux/{name}")
async def flux_detail(request: Request, who: Who, name: str) -> Response:
    flux = _known(name)
    fields: dict[str, Any] = {n: {"name": f.label or n, "type": f.kind, "requis": f.required}
                              for n, f in flux.fields.items()}
    for file_field in (flux.main, flux.annexes):
        if file_field:
            fields[file_field] = {"name": file_field, "type": "file",
                                  "multiple": file_field == flux.annexes,
                                  "requis": file_field == flux.main}
    return pastell_json(fields)


@router.get("/flux/{name}/action")
async def flux_actions(request: Request, who: Who, name: str) -> Response:
    flux = _known(name)
    names = ["creation", "modification", "supression", *flux.sends, *flux.extra_actions,
             flux.final, *{n for s in STEP_STATES.values()
                           for n in (s.running, s.done, s.rejected, s.error)}]
    return pastell_json({n: {"name": n} for n in dict.fromkeys(names)})


def _connectors(door: Door, siren: str, id_e: str) -> list[dict[str, Any]]:
    tenant = door.tenants.get(siren)
    return [{"id_ce": role, "id_e": id_e, "libelle": role, "id_connecteur": conf.type,
             "type": FAMILIES.get(role, role), "frequence_en_minute": "1", "id_verrou": ""}
            for role, conf in tenant.connectors.items()]


@router.get("/entite/{id_e}/connecteur")
async def connectors(request: Request, who: Who, id_e: str) -> Response:
    door = door_of(request, who)
    return pastell_json(_connectors(door, await door.entity(id_e), id_e))


@router.get("/entite/{id_e}/connecteur/{id_ce}")
async def connector(request: Request, who: Who, id_e: str, id_ce: str) -> Response:
    door = door_of(request, who)
    found = [c for c in _connectors(door, await door.entity(id_e), id_e) if c["id_ce"] == id_ce]
    if not found:
        raise PastellError(404, f"Le connecteur {id_ce} n'existe pas")
    return pastell_json(found[0] | {"data": {}, "action-possible": []})


@router.get("/entite/{id_e}/connecteur/{id_ce}/externalData/{field}")
async def connector_data(request: Request, who: Who, id_e: str, id_ce: str, field: str
                         ) -> Response:
    """The i-Parapheur type and sub-types of the tenant's signature connector."""
    door = door_of(request, who)
    tenant = door.tenants.get(await door.entity(id_e))
    conf = tenant.connectors.get(id_ce)
    if conf is None or conf.type != "iparapheur":
        raise PastellError(404, f"Le connecteur {id_ce} n'existe pas")
    if field == "iparapheur_type":
        return pastell_json([str(conf.options.get("type", ""))])
    if field == "iparapheur_sous_type":
        subtypes = conf.options.get("subtypes") or [conf.options.get("subtype")]
        return pastell_json([str(s) for s in subtypes if s])
    raise PastellError(400, f"Type {field} introuvable")


@router.get("/entite/{id_e}/flux")
async def associations(request: Request, who: Who, id_e: str) -> Response:
    """Each flux the entity uses with the connectors its flow's steps name."""
    door = door_of(request, who)
    siren = await door.entity(id_e)
    params = await read_params(request)
    tenant = door.tenants.get(siren)
    rows = []
    for flux in FLUX.values():
        if params.get("flux") not in ("", flux.name) or not door.uses(siren, flux):
            continue
        steps = door.bus.client.runtime.flows.get(flux.flow).steps
        for role in dict.fromkeys(s.connector for s in steps if s.connector):
            if role in tenant.connectors and params.get("type") in ("", FAMILIES.get(role)):
                rows.append({"id_fe": f"{flux.name}:{role}", "id_e": id_e, "flux": flux.name,
                             "id_ce": role, "type": FAMILIES.get(role, role),
                             "num_same_type": "0"})
    return pastell_json(rows)
