"""HR acts (flows ``hr-decree``, ``hr-contract``): sent to the prefecture like an acte
when the law says so, filed in the agent's file. Depends on the ``actes`` family (an
HR act the prefecture receives is an acte): the one declared exception. Importing the
package registers its checks, steps and demo documents (``bus.plugins``)."""

from schemas import hr as _hr_metadata  # noqa: F401  (models ``hr-decree``, ``hr-contract``)
from workers.hr import agent_file, checks, demo, transmit  # noqa: F401  (they register)
