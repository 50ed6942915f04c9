"""Demo HR acts: a decree sent to the prefecture, a contract signed twice (i-Parapheur
tenant) and a decree that stays local (leave)."""

from __future__ import annotations

import time
from datetime import date

from bus.plugins import REGISTRY
from workers.common.demo import DEMO_TENANTS, DemoDocument, minimal_pdf


@REGISTRY.demo
def hr_documents(index: int, stamp: int | None = None) -> list[DemoDocument]:
    """HR acts of the i-th demo round (numbers unique per run, as S²LOW requires)."""
    stamp = int(time.time()) % 10**7 if stamp is None else stamp
    today = date.today().isoformat()
    seal, parapheur = DEMO_TENANTS

    def act(flow: str, tenant: str, label: str, number: str, act_type: str, subject: str,
            classification: str) -> DemoDocument:
        return DemoDocument(
            flow=flow, tenant=tenant, label=label,
            files={f"{number.lower()}.pdf": minimal_pdf(f"{subject} - acte {number}")},
            metadata={"number": number, "decision_date": today, "subject": subject,
                      "classification": classification, "classification_date": "2025-01-01",
                      "matricule": f"H{index:03d}{number[-1]}", "agent_name": "Agent de démo",
                      "act_type": act_type})

    return [
        act("hr-decree", seal, "arrêté de nomination (préfecture)", f"AI{stamp}_{index}N",
            "nomination", f"Nomination stagiaire d'un adjoint administratif ({index})", "4.1"),
        act("hr-contract", parapheur, "contrat (double signature, préfecture)",
            f"CC{stamp}_{index}R", "recrutement",
            f"Recrutement d'un agent contractuel ({index})", "4.2"),
        act("hr-decree", parapheur, "arrêté de congé (non transmis)", f"AI{stamp}_{index}C",
            "conge", f"Congé parental d'un agent ({index})", "4.1"),
    ]
