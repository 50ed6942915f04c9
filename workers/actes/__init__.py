"""The bus side of legality control (flows ``acte`` and ``acte-followup``): tenant ACTES
settings, the prefecture classification cache, intake checks and operator commands."""
