"""Flow families and the steps they share, as plug-ins of the bus (``bus.plugins``).

- ``step.py``: ``StepContext`` and ``@step("kind")``, which registers a step kind;
- ``common/``: steps any flow may use (validate, sign, deposit, publish, noop);
- ``archive/``: the archive step and the archive batcher service group;
- one package per flow family (``actes/``, ``finance/``, ``payroll/``, ``hr/``), each
  registering its intake checks, steps, demo documents and commands in its ``__init__``.

A family may import the kernel (``bus``), ``connectors``, ``schemas``, ``workers.step``,
``workers.common`` and ``workers.archive``, never another family (``hr`` builds on
``actes``: the declared exception). The packages are found through the
``demat.plugins`` entry points in ``pyproject.toml``.
"""
