"""Legality control (flows ``acte`` and ``acte-followup``): tenant ACTES settings, the
prefecture classification cache, intake checks, the S²LOW steps, the demo actes, the
``demat acte`` commands and their ``/v1/actes`` routes. Importing the package registers
them (``bus.plugins``)."""

from schemas import acte as _acte_metadata  # noqa: F401  (models ``acte``, ``acte-followup``)
from workers.actes import (  # noqa: F401  (each module registers what it defines)
    acknowledgement,
    api,
    checks,
    commands,
    demo,
    followup,
    letters,
    transmit,
)
