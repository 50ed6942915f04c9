"""Tenants (member cities) and their connector settings, from one YAML file.

A connector's secret option (``password``, ``client_secret``...) may be given in clear,
or as ``<option>_env: VARIABLE`` (an environment variable) or ``<option>_file: PATH``
(a file, e.g. a mounted Docker or Kubernetes secret): ``resolve_secrets`` puts its value
under ``<option>`` when the tenants file is loaded, so every connector reads it alike.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_serializer,
    model_validator,
)

from schemas.siren import Siren
from schemas.siret import Siret
from schemas.text import ascii_digits

# connector options holding a secret: each may come from <name>_env or <name>_file
SECRET_OPTIONS = ("password", "client_secret", "smtp_password", "key_password", "token",
                  "api_key", "secret")


def resolve_secrets(options: Mapping[str, Any],
                    environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``options`` with every ``<secret>_env`` / ``<secret>_file`` replaced by the
    secret's value under ``<secret>``; errors name the option, variable or file."""
    environ = os.environ if environ is None else environ
    resolved = dict(options)
    for name in SECRET_OPTIONS:
        given = [k for k in (name, f"{name}_env", f"{name}_file") if k in resolved]
        if len(given) > 1:
            raise ValueError(f"connector options {', '.join(given)}: give only one of them")
        if given and given[0] != name:
            resolved[name] = _secret_value(given[0], resolved.pop(given[0]), environ)
    return resolved


def _secret_value(option: str, source: Any, environ: Mapping[str, str]) -> str:
    if not isinstance(source, str) or not source.strip():
        raise ValueError(f"connector option {option}: expected a variable name or a path, "
                         f"got {source!r}")
    if option.endswith("_env"):
        value = environ.get(source, "")
        if not value:
            raise ValueError(f"connector option {option}: environment variable {source} "
                             "is not set or empty")
        return value
    try:
        value = Path(source).read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ValueError(f"connector option {option}: secret file {source}: {reason}") from exc
    if not value:
        raise ValueError(f"connector option {option}: secret file {source} is empty")
    return value


class ConnectorConfig(BaseModel):
    """One partner connector of a tenant: its implementation type and options.

    ``options`` holds the secrets resolved (``resolve_secrets``); dumps show the options
    as declared, so a secret read from the environment or a file is never serialised.
    """

    model_config = ConfigDict(extra="forbid")

    type: str
    options: dict[str, Any] = Field(default_factory=dict)
    _declared: dict[str, Any] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _resolve_secrets(self) -> ConnectorConfig:
        if self._declared is None:
            self._declared = dict(self.options)
            self.options = resolve_secrets(self.options)
        return self

    @field_serializer("options")
    def _as_declared(self, options: dict[str, Any]) -> dict[str, Any]:
        return options if self._declared is None else self._declared


class Tenant(BaseModel):
    """A member city (or other authority) using the bus."""

    model_config = ConfigDict(extra="forbid")

    siren: Siren
    name: str
    settings: dict[str, Any] = Field(default_factory=dict)
    connectors: dict[str, ConnectorConfig] = Field(default_factory=dict)
    flows: list[str] | None = None  # None: every flow
    parent: Siren | None = None  # the entity above (a syndicate above its member cities)
    # the establishments (SIRET) whose documents this tenant submits; none listed: any
    # SIRET of its SIREN
    sirets: list[Siret] = Field(default_factory=list)

    @model_validator(mode="after")
    def _own_sirets(self) -> Tenant:
        for i, siret in enumerate(self.sirets):
            if siret[:9] != self.siren:
                raise ValueError(f"sirets[{i}]: SIRET {siret} is not an establishment of "
                                 f"SIREN {self.siren} (its first 9 digits)")
        return self

    def uses(self, flow: str) -> bool:
        return self.flows is None or flow in self.flows

    def owns_siret(self, siret: str) -> bool:
        """Whether ``siret`` (spaces ignored) is one of this tenant's establishments."""
        value = siret.replace(" ", "")
        if self.sirets:
            return value in self.sirets
        return ascii_digits(value, 14) and value[:9] == self.siren


class TenantsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenants: list[Tenant]

    @model_validator(mode="after")
    def _tree(self) -> TenantsFile:
        """Every parent is a configured tenant, and no tenant is its own ancestor."""
        by_siren = {t.siren: t for t in self.tenants}
        for i, t in enumerate(self.tenants):
            if t.parent is not None and t.parent not in by_siren:
                raise ValueError(f"tenants[{i}].parent: tenant {t.parent} (parent of "
                                 f"{t.siren}) is not configured")
            seen, up = {t.siren}, t.parent
            while up is not None:
                if up in seen:
                    raise ValueError(f"tenants[{i}].parent: cycle in the entity tree "
                                     f"through {t.siren}")
                seen.add(up)
                up = by_siren[up].parent
        return self


class TenantRegistry:
    """Tenants by SIREN."""

    def __init__(self, tenants: list[Tenant]) -> None:
        self._by_siren = {t.siren: t for t in tenants}

    @classmethod
    def load(cls, path: Path) -> TenantRegistry:
        """Read and validate the tenants file; errors name the file and field."""
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ValueError(f"tenants file {path}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise ValueError(f"tenants file {path}: invalid YAML: {exc}") from exc
        try:
            return cls(TenantsFile.model_validate(raw).tenants)
        except ValidationError as exc:
            raise ValueError(f"tenants file {path}: {exc}") from exc

    def get(self, siren: str) -> Tenant:
        try:
            return self._by_siren[siren]
        except KeyError:
            raise KeyError(f"tenant {siren} is not configured on this bus") from None

    def ancestors(self, siren: str) -> list[str]:
        """``siren`` then every entity above it, nearest first (unknown: just ``siren``)."""
        chain = [siren]
        while (t := self._by_siren.get(chain[-1])) is not None and t.parent is not None:
            chain.append(t.parent)
        return chain

    def descendants(self, siren: str) -> set[str]:
        """``siren`` and every entity below it."""
        return {t.siren for t in self if siren in self.ancestors(t.siren)} | {siren}

    def __contains__(self, siren: object) -> bool:
        return siren in self._by_siren

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._by_siren.values())
