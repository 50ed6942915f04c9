"""Generated payroll runs (PDFs + index.csv) for the benchmark, the demo and tests.

Every value is synthetic: NIRs have a valid key but no real person behind them.
"""

from __future__ import annotations

import csv
from pathlib import Path

from schemas.payslip import nir_key
from workers.common.demo import minimal_pdf

SIRET = "21690091000011"
COLUMNS = ("file", "matricule", "period", "employer_siret", "nir", "agent_name", "birth_date",
           "email", "net_amount", "channels")


def sample_nir(i: int) -> str:
    """A synthetic NIR, distinct for each ``i`` below one million, with its key."""
    body = (f"{1 + i % 2}{70 + i % 30:02d}{1 + i % 12:02d}75{(100 + i) % 1000:03d}"
            f"{i // 1000 % 1000:03d}")
    return body + f"{nir_key(body):02d}"


def write_run(folder: Path, channels: list[str], period: str = "2026-11") -> list[dict]:
    """PDFs and index.csv of one pay slip per entry of ``channels`` ("ensap|agent-space")."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, chans in enumerate(channels):
        name = f"bp-{i:04d}.pdf"
        (folder / name).write_bytes(minimal_pdf(f"BULLETIN CONFIDENTIEL agent {i} {period}"))
        rows.append({"file": name, "matricule": f"M{i:04d}", "period": period,
                     "employer_siret": SIRET, "nir": sample_nir(i),
                     "agent_name": f"Agent Testé {i}", "birth_date": "1979-05-17",
                     "email": f"agent{i}@example.fr" if "secure-mail" in chans else "",
                     "net_amount": f"{2000 + i}.{i % 100:02d}", "channels": chans})
    write_index(folder / "index.csv", rows)
    return rows


def write_index(path: Path, rows: list[dict]) -> None:
    """The run's index, one row per pay slip."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
