"""Demo pay slips: one per delivery channel, with test NIRs (valid keys, fictitious people)."""

from __future__ import annotations

from bus.plugins import REGISTRY
from schemas.payslip import nir_key
from workers.common.demo import DEMO_SIRETS, DEMO_TENANTS, DemoDocument, minimal_pdf

AGENTS = (("Camille Martin", "2", "ensap"), ("Lucas Bernard", "1", "agent-space"),
          ("Inès Petit", "2", "secure-mail"))


def demo_nir(index: int, sex: str) -> str:
    """A well-formed test NIR (born 1980-89 in the Rhône, fictitious commune and order)."""
    body = f"{sex}{80 + index % 10:02d}{1 + index % 12:02d}69{900 + index % 99:03d}" \
           f"{index % 1000:03d}"
    return body + f"{nir_key(body):02d}"


@REGISTRY.demo
def payslip_documents(index: int) -> list[DemoDocument]:
    """The pay slips of the i-th demo round (period 2026-11)."""
    docs = []
    for n, (name, sex, channel) in enumerate(AGENTS):
        tenant = DEMO_TENANTS[(index + n) % 2]
        matricule = f"D{index:03d}{n}"
        meta = {"matricule": matricule, "period": "2026-11",
                "employer_siret": DEMO_SIRETS[tenant], "agent_name": name,
                "net_amount": f"{1850 + 37 * n}.{index % 100:02d}", "channels": [channel]}
        if channel == "ensap":
            meta |= {"nir": demo_nir(index * 3 + n, sex), "birth_date": "1986-04-12"}
        if channel == "secure-mail":
            meta["email"] = f"agent.{matricule.lower()}@example.fr"
        docs.append(DemoDocument(
            flow="payslip", tenant=tenant, label=f"bulletin de paie ({channel})",
            files={f"bulletin-{matricule}.pdf": minimal_pdf(
                f"Bulletin de paie 2026-11 matricule {matricule}")},
            metadata=meta))
    return docs
