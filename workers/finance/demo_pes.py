"""Demo PES Aller files (expense bordereaux), valid against the DGFiP PES V2 schema."""

from __future__ import annotations

from datetime import date
from xml.sax.saxutils import quoteattr

from schemas.pes import ALLER_NS


def _v(tag: str, value: object) -> str:
    return f"<{tag} V={quoteattr(str(value))}/>"


def _piece(n: int, amount: str) -> str:
    return ("<Piece><BlocPiece><InfoPce>" + _v("IdPce", n) + _v("TypPce", "01")
            + _v("NatPce", "01") + _v("Obj", f"Facture fournitures n{n}")
            + "</InfoPce></BlocPiece><LigneDePiece><BlocLignePiece><InfoLignePce>"
            + _v("IdLigne", 1) + _v("Nature", "60628") + _v("LibVir1", f"Facture {n}")
            + _v("ModRegl", "03") + _v("TVAIntraCom", 0) + _v("MtHT", amount)
            + "</InfoLignePce></BlocLignePiece><Tiers><InfoTiers>"
            + _v("IdTiers", "38947246500027") + _v("NatIdTiers", "01") + _v("RefTiers", "4078")
            + _v("CatTiers", "50") + _v("NatJur", "03") + _v("Nom", "FOURNITURES DEMO")
            + "</InfoTiers><Adresse>" + _v("TypAdr", 1) + _v("Adr2", "1 RUE DE LA GARE")
            + _v("CP", "69001") + _v("Ville", "LYON") + _v("CodRes", 0)
            + "</Adresse></Tiers></LigneDePiece></Piece>")


def demo_pes(siret: str, name: str, *, bordereaux: int = 2, pieces: int = 3,
             year: int | None = None) -> bytes:
    """A PES Aller of expense bordereaux (``bordereaux`` x ``pieces`` payment orders)."""
    today = date.today()
    year = year or today.year
    body = []
    for b in range(1, bordereaux + 1):
        amount = "100.00"
        total = f"{100 * pieces:.2f}"
        body.append(
            f"<Bordereau Id={quoteattr(f'BORD{name}{b}')}><BlocBordereau>" + _v("Exer", year)
            + _v("IdBord", b) + _v("DteBordEm", today.isoformat()) + _v("TypBord", "01")
            + _v("NbrPce", pieces) + _v("MtCumulAnnuel", total) + _v("MtBordHT", total)
            + "</BlocBordereau>" + "".join(_piece(b * 1000 + p, amount)
                                           for p in range(1, pieces + 1)) + "</Bordereau>")
    xml = (f'<?xml version="1.0" encoding="ISO-8859-1"?>\n<n:PES_Aller xmlns:n="{ALLER_NS}" '
           f"Id={quoteattr('ID' + name)}><Enveloppe><Parametres>" + _v("Version", 2)
           + _v("TypFic", "PESALR2") + _v("NomFic", name) + "</Parametres><Emetteur>"
           + _v("Sigle", "DEMAT-BUS") + _v("Adresse", "demat-bus demo") + "</Emetteur>"
           "</Enveloppe><EnTetePES>" + _v("DteStr", today.isoformat()) + _v("IdPost", "069000")
           + _v("IdColl", siret) + _v("CodCol", "100") + _v("CodBud", "00")
           + _v("LibelleColBud", "BUDGET PRINCIPAL") + "</EnTetePES><PES_DepenseAller>"
           "<EnTeteDepense>" + _v("IdVer", 2) + "</EnTeteDepense>" + "".join(body)
           + "</PES_DepenseAller></n:PES_Aller>\n")
    return xml.encode("iso-8859-1")
