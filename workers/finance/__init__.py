"""Finance flows: invoices with Chorus Pro (sent and received) and PES accounting files
to the treasury through S²LOW Helios. Importing the package registers its checks,
steps, demo documents and ``demat invoices`` commands (``bus.plugins``)."""

from schemas import invoice as _invoice_metadata  # noqa: F401  (``invoice``, ``invoice-in``)
from schemas import pes as _pes_metadata  # noqa: F401  (model ``helios``)
from workers.finance import (  # noqa: F401  (each module registers what it defines)
    checks,
    chorus_deposit,
    chorus_received,
    chorus_status,
    demo,
    helios_acquit,
    helios_transmit,
    importer,
)
