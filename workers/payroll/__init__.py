"""Payroll (flow ``payslip``): pay slip checks against the tenant's configuration,
payroll run ingestion (``demat submit-batch``), ENSAP lots, the agent space and secure
mail. Importing the package registers them (``bus.plugins``)."""

from schemas import payslip as _payslip_metadata  # noqa: F401  (model ``payslip``)
from workers.payroll import (  # noqa: F401  (each module registers what it defines)
    agent_space,
    checks,
    commands,
    demo,
    ensap,
    mail_receipt,
    secure_mail,
)
