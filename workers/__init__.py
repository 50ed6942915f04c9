"""Step workers: one module per step kind, each a thin subscriber over plain functions."""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

STEP_KINDS: dict[str, str] = {
    "validate": "workers.common.validate",
    "deposit": "workers.common.deposit",
    "archive": "workers.archive.step",
    "acte-transmit": "workers.actes.transmit",
    "acte-acknowledgement": "workers.actes.acknowledgement",
    "acte-letters": "workers.actes.letters",
    "acte-followup": "workers.actes.followup",
    "publish": "workers.common.publish",
    "payslip-ensap": "workers.payroll.ensap",
    "agent-space": "workers.payroll.agent_space",
    "secure-mail": "workers.payroll.secure_mail",
    "mail-receipt": "workers.payroll.mail_receipt",
    "hr-transmit": "workers.hr.transmit",
    "hr-acknowledgement": "workers.hr.transmit",
    "hr-agent-file": "workers.hr.agent_file",
    "sign": "workers.common.sign",
    "noop": "workers.common.noop",
    "chorus-deposit": "workers.finance.chorus_deposit",
    "chorus-status": "workers.finance.chorus_status",
    "chorus-received-status": "workers.finance.chorus_received",
    "helios-transmit": "workers.finance.helios_transmit",
    "helios-acquit": "workers.finance.helios_acquit",
}


def step_module(kind: str) -> ModuleType:
    """The module implementing step ``kind`` (it exposes ``async run(task, ctx)``)."""
    return import_module(STEP_KINDS[kind])
