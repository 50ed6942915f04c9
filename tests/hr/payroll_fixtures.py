"""A small payroll run written to disk (PDFs + index), for ingestion tests."""

from workers.payroll.sample import COLUMNS, SIRET, sample_nir, write_index, write_run

__all__ = ["COLUMNS", "SIRET", "sample_nir", "write_index", "write_run"]
