"""Demo actes: a deliberation with an annex (published) and a regulatory decree."""

from __future__ import annotations

import time
from datetime import date

from bus.plugins import REGISTRY
from workers.common.demo import DEMO_TENANTS, DemoDocument, minimal_pdf


@REGISTRY.demo
def acte_documents(index: int, stamp: int | None = None) -> list[DemoDocument]:
    """Actes of the i-th demo round; internal numbers are unique per run (``stamp``),
    as S²LOW refuses a number it already holds for the authority."""
    stamp = int(time.time()) % 10**8 if stamp is None else stamp
    today = date.today().isoformat()
    first, second = DEMO_TENANTS[index % 2], DEMO_TENANTS[(index + 1) % 2]
    return [
        DemoDocument(
            flow="acte", tenant=first, label="délibération + annexe",
            files={f"deliberation-{index}.pdf": minimal_pdf(f"Deliberation {index}: budget"),
                   f"note-synthese-{index}.pdf": minimal_pdf(f"Note de synthese {index}")},
            metadata={"nature": 1, "number": f"DE{stamp}_{index}", "decision_date": today,
                      "subject": f"Vote du budget primitif (démo {index})",
                      "classification": "7.1", "classification_date": "2025-01-01",
                      "annexes": [{"file_name": f"note-synthese-{index}.pdf",
                                   "typology": "41_NC"}],
                      "publish": True}),
        DemoDocument(
            flow="acte", tenant=second, label="arrêté réglementaire",
            files={f"arrete-{index}.pdf": minimal_pdf(f"Arrete de circulation {index}")},
            metadata={"nature": "AR", "number": f"AR{stamp}_{index}", "decision_date": today,
                      "subject": f"Réglementation de la circulation rue de la Gare ({index})",
                      "classification": "9.1", "classification_date": "2025-01-01"}),
    ]
