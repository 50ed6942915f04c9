"""Local electronic seal and signature verdicts: ``local`` (the ``seal`` connector type:
PAdES, XAdES, CMS), ``signers``, ``keys``, ``cms_template``, ``verify`` and ``verdict``.

Nothing is imported here, so reading a verdict (``demat inspect``) does not load the
signing stack.
"""
