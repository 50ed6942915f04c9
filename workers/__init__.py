"""Step workers: one module per step kind, each a thin subscriber over plain functions."""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

STEP_KINDS: dict[str, str] = {
    "validate": "workers.validate",
    "deposit": "workers.deposit",
    "archive": "workers.archive",
    "acte-transmit": "workers.acte_transmit",
    "acte-acknowledgement": "workers.acte_acknowledgement",
    "acte-letters": "workers.acte_letters",
    "acte-followup": "workers.acte_followup",
    "publish": "workers.publish",
    "payslip-ensap": "workers.ensap",
    "agent-space": "workers.agent_space",
    "secure-mail": "workers.secure_mail",
    "mail-receipt": "workers.mail_receipt",
    "hr-transmit": "workers.hr_transmit",
    "hr-acknowledgement": "workers.hr_transmit",
    "hr-agent-file": "workers.hr_agent_file",
    "sign": "workers.sign",
    "noop": "workers.noop",
    "chorus-deposit": "workers.chorus_deposit",
    "chorus-status": "workers.chorus_status",
    "chorus-received-status": "workers.chorus_received",
    "helios-transmit": "workers.helios_transmit",
    "helios-acquit": "workers.helios_acquit",
}


def step_module(kind: str) -> ModuleType:
    """The module implementing step ``kind`` (it exposes ``async run(task, ctx)``)."""
    return import_module(STEP_KINDS[kind])
