"""Business search keys a flow declares (``search_keys`` in the flow YAML).

Each key names where its value is found: ``meta.<path>`` in the document's
metadata, or ``steps.<step>.<path>`` in a step's output. ``personal: true``
marks personal identifiers (agent matricule, NIR, names): they are indexed and
journaled only as keyed hashes (HMAC with the bus secret), never in clear.

    search_keys:
      acte_number: meta.numero_interne            # short form
      matricule: {path: meta.agent.matricule, personal: true}
      receipt: steps.transmit.receipt_id
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

KeyHasher = Callable[[str, str], str]


class SearchKey(BaseModel):
    """Where one business key of a flow's documents is found."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(pattern=r"^(meta|steps\.[a-z][a-z0-9_-]*)\.[A-Za-z0-9_.]+$")
    personal: bool = False

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        return {"path": value} if isinstance(value, str) else value

    @property
    def step(self) -> str | None:
        """The step whose output holds the key, or ``None`` for metadata keys."""
        return self.path.split(".")[1] if self.path.startswith("steps.") else None

    @property
    def field_path(self) -> list[str]:
        parts = self.path.split(".")
        return parts[2:] if self.step else parts[1:]


def check_search_keys(flow_name: str, keys: dict[str, SearchKey], steps: Iterable[str]) -> None:
    """Raise ``ValueError`` naming the key whose step the flow does not have."""
    names = set(steps)
    for name, key in keys.items():
        if key.step is not None and key.step not in names:
            raise ValueError(f"flow {flow_name!r}, search key {name!r}: unknown step "
                             f"{key.step!r} in {key.path!r}")


def normalize(value: Any) -> str:
    """Keys compare case- and space-insensitively."""
    return " ".join(str(value).split()).casefold()


def _values(data: Any, path: list[str]) -> list[Any]:
    for part in path:
        if not isinstance(data, dict) or part not in data:
            return []
        data = data[part]
    items = data if isinstance(data, list) else [data]
    return [v for v in items if v is not None and not isinstance(v, (dict, list))
            and normalize(v)]


def extract_keys(keys: dict[str, SearchKey], data: dict[str, Any], *, step: str | None,
                 hasher: KeyHasher | None) -> dict[str, list[str]]:
    """Values of the keys found in ``data`` (metadata if ``step`` is None, else its output).

    Personal keys become ``hasher(name, normalized value)``; without a hasher they
    are left out, never written in clear.
    """
    found: dict[str, list[str]] = {}
    for name, key in keys.items():
        if key.step != step:
            continue
        if key.personal and hasher is None:
            continue
        values = [normalize(v) for v in _values(data, key.field_path)]
        if key.personal:
            values = [hasher(name, v) for v in values]  # type: ignore[misc]
        if values:
            found[name] = sorted(set(values))
    return found
