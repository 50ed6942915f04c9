"""Payroll: pay slip checks against the tenant's configuration and payroll run ingestion."""
