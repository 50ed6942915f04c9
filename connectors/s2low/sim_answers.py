"""How the simulated S²LOW writes its answers (texts, escapes, redirects, file rows)."""

from __future__ import annotations

from fastapi import Response
from fastapi.responses import RedirectResponse

from connectors.s2low import actes as A
from connectors.s2low.prefecture import SimTransaction


def text(body: str) -> Response:
    return Response(body.encode("latin-1", "replace"),
                    media_type="text/plain; charset=ISO-8859-1")


def ok(rest: str) -> Response:
    return text(f"OK\n{rest}")


def ko(message: str) -> Response:
    """``returnAndExit`` in API mode: ``KO``, then the message HTML-escaped."""
    escaped = (message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
               .replace('"', "&quot;").replace("'", "&#039;"))
    return text(f"KO\n{escaped}\n")


def files_of(tx: SimTransaction) -> list[tuple[str, bytes]]:
    """The transaction's files as ``actes_included_files`` orders them: form first."""
    form = [(tx.form_name, tx.files[tx.form_name])] if tx.form_name in tx.files else []
    return form + [(n, d) for n, d in tx.files.items()
                   if n != tx.form_name and not n.startswith(("EACT", "PREF"))]


def file_id(tx: SimTransaction, index: int) -> int:
    return tx.id * 100 + index


def mime(name: str) -> str:
    return {"pdf": "application/pdf", "xml": "text/xml"}.get(name.rsplit(".", 1)[-1].lower(),
                                                            "application/octet-stream")


def classification_of(tx: SimTransaction) -> str:
    try:
        return A.parse_message(tx.files[tx.form_name], validate=False).acte.classification
    except (A.ActesError, AttributeError, KeyError):
        return ""


def unauthenticated(path: str) -> Response:
    """What each script answers an unauthenticated call (see connectors/README.md)."""
    if path.endswith(("actes_download_file.php", "actes_transac_get_ARActe.php",
                      "helios_download_acquit.php", "helios_download_file.php")):
        return RedirectResponse("/connexion-status", status_code=302)
    if path.endswith("helios_transac_get_status.php"):
        return Response('<?xml version="1.0" encoding="ISO-8859-1"?>\n<transaction >\n'
                        "<id>0</id><resultat>KO</resultat><message>\u00c9chec de "
                        "l'authentification</message><status></status></transaction>"
                        .encode(), media_type="text/xml")
    return text("KO\nÉchec de l'authentification")
