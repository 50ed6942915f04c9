"""Steps every flow may use (validate, sign, deposit, publish, noop) and the generic
``document`` flow's demo. Importing the package registers them (``bus.plugins``)."""

from schemas import metadata as _document_metadata  # noqa: F401  (model ``document``)
from workers.common import (  # noqa: F401  (each module registers what it defines)
    demo,
    demo_signature,
    deposit,
    document_types,
    noop,
    publish,
    sign,
    validate,
)
