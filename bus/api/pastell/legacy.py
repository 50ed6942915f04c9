"""The incumbent's v1 ``*.php`` scripts, answered by the v2 routes they stand for (the
incumbent's own table, for the scripts of documents, entities, flux and the journal),
with v1's quirks: ISO-8859-1 input, every value a string, ``action.php`` answering
``"result":"1"``, and HTTP 200 for generic errors (401, 403 and 404 keep their codes)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import Response

from bus.api.pastell.http import PastellError, PastellRoute, pastell_json, read_params

router = APIRouter(prefix="/api", route_class=PastellRoute, include_in_schema=False)
_DOC = "entite/{id_e}/document/{id_d}"
# script -> (v2 path, its parameters filled in, and method)
SCRIPTS: dict[str, tuple[str, str]] = {
    "version.php": ("version", "GET"),
    "document-type.php": ("flux", "GET"),
    "document-type-info.php": ("flux/{type}", "GET"),
    "document-type-action.php": ("flux/{type}/action", "GET"),
    "journal.php": ("journal", "GET"),
    "list-entite.php": ("entite", "GET"),
    "detail-entite.php": ("entite/{id_e}", "GET"),
    "list-connecteur-entite.php": ("entite/{id_e}/connecteur", "GET"),
    "detail-connecteur-entite.php": ("entite/{id_e}/connecteur/{id_ce}", "GET"),
    "list-flux-connecteur.php": ("entite/{id_e}/flux", "GET"),
    "list-document.php": ("entite/{id_e}/document", "GET"),
    "recherche-document.php": ("entite/{id_e}/document", "GET"),
    "detail-document.php": (_DOC, "GET"),
    "detail-several-document.php": ("entite/{id_e}/document", "GET"),
    "create-document.php": ("entite/{id_e}/document", "POST"),
    "modif-document.php": (_DOC, "PATCH"),
    "external-data.php": (_DOC + "/externalData/{field}", "GET"),
    "recuperation-fichier.php": (_DOC + "/file/{field}/{num}", "GET"),
    "receive-file.php": (_DOC + "/file/{field_name}/{file_number}?receive=true", "GET"),
    "send-file.php": (_DOC + "/file/{field}/{num}", "POST"),
    "action.php": (_DOC + "/action/{action}", "POST"),
}
KEEP_CODES = (401, 403, 404)


class _Filled(dict):
    def __missing__(self, key: str) -> str:
        return ""


def strings(value: Any) -> Any:
    """Every value as a string, keys included (v1 answers)."""
    if isinstance(value, dict):
        return {str(k): strings(v) for k, v in value.items()}
    if isinstance(value, list):  # PHP's sequential keys stay a list
        return [strings(v) for v in value]
    if value is True:
        return "1"
    if value is False or value is None:
        return ""
    return str(value)


@router.api_route("/{script}.php", methods=["GET", "POST"])
async def legacy(request: Request, script: str) -> Response:
    """Answer a v1 script by calling the v2 route it stands for in this process."""
    name = f"{script}.php"
    if name not in SCRIPTS:
        raise PastellError(404, f"Impossible de trouver le script {name}")
    template, method = SCRIPTS[name]
    params = await read_params(request, encoding="latin-1")
    values = _Filled({k: quote(v, safe="") for k, v in params.fields()})
    if name == "recuperation-fichier.php" and not values["num"]:
        values["num"] = "0"
    path = "/api/v2/" + template.format_map(values).replace("//", "/").rstrip("/")
    form = [(k, v) for k, v in params.items if isinstance(v, str)]
    files = [(k, (v.filename or k, await v.read(), v.content_type)) for k, v in params.items
             if not isinstance(v, str)]
    return _v1(name, await _inner(request, method, path, form, files))


async def _inner(request: Request, method: str, path: str,
                 form: list[tuple[str, str]] | None = None, files: list | None = None
                 ) -> httpx.Response:
    """``method path`` on this process's own app, as the caller (its Authorization)."""
    headers = {k: v for k, v in request.headers.items() if k.lower() == "authorization"}
    form = form or []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=request.app),
                                 base_url="http://pastell-v1") as inner:
        if method in ("GET", "DELETE"):
            sep = "&" if "?" in path else "?"
            return await inner.request(method, path + sep + urlencode(form), headers=headers)
        if files:
            return await inner.request(method, path, headers=headers, data=dict(form),
                                       files=files)
        return await inner.request(method, path, headers=headers | {
            "content-type": "application/x-www-form-urlencoded"},
            content=urlencode(form).encode())


def _v1(name: str, answer: httpx.Response) -> Response:
    """The v2 answer as v1 gave it."""
    status = answer.status_code
    if not answer.headers.get("content-type", "").startswith("application/json"):
        return Response(answer.content, status, media_type=answer.headers.get("content-type"),
                        headers={k: v for k, v in answer.headers.items()
                                 if k.lower() == "content-disposition"})
    body = json.loads(answer.content) if answer.content else {}
    if name == "action.php" and isinstance(body, dict) and body.get("result") is True:
        body["result"] = "1"
    code = status if status in KEEP_CODES or status >= 500 else 200
    headers = {k: v for k, v in answer.headers.items()
               if k.lower() in ("www-authenticate", "retry-after")}
    return pastell_json(strings(body), code, headers, pretty=False)


@router.get("/rest/allo")
async def rest_allo(request: Request) -> Response:
    """Any path holding ``rest/allo`` is the incumbent's ``v2/version/allo``."""
    answer = await _inner(request, "GET", "/api/v2/version/allo")
    return Response(answer.content, answer.status_code,
                    media_type=answer.headers.get("content-type"))


@router.api_route("/{path:path}", methods=["PUT", "TRACE", "CONNECT"])
async def other_methods(path: str) -> Response:
    """Methods other than GET, POST, PATCH and DELETE: 405."""
    raise PastellError(405, "Cette méthode n'est pas utilisable sur l'API Pastell")
