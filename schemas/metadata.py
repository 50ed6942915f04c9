"""Per-flow metadata models, looked up by the name a flow definition gives.

Each model registers itself where it is defined (``@registers("name")``); a flow
family's package imports its schema module, so its models are known once it loads.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from schemas.text import MultiLine, SingleLine, check_single_line

M = TypeVar("M", bound=type[BaseModel])
# a scalar of a partner's folder metadata; a text one is a single line
FolderValue = Annotated[str | int | float | bool, AfterValidator(
    lambda v: check_single_line(v) if isinstance(v, str) else v)]
METADATA_MODELS: dict[str, type[BaseModel]] = {}


def registers(*names: str) -> Callable[[M], M]:
    """Class decorator: the model is the metadata model of flows naming it ``names``."""
    def register(model: M) -> M:
        for name in names:
            current = METADATA_MODELS.get(name)
            if current is not None and current is not model:
                raise ValueError(f"metadata model {name!r} is registered twice: "
                                 f"{current.__qualname__} and {model.__qualname__}")
            METADATA_MODELS[name] = model
        return model
    return register


@registers("document")
class DocumentMetadata(BaseModel):
    """Metadata of a generic document (flow ``document``)."""

    model_config = ConfigDict(extra="forbid")

    title: SingleLine = Field(min_length=1, max_length=500)
    description: MultiLine = Field(default="", max_length=5000)
    category: SingleLine = Field(default="courrier", max_length=100)
    document_date: date | None = None
    keywords: list[SingleLine] = Field(default_factory=list, max_length=50)
    author: SingleLine | None = Field(default=None, max_length=200)
    deposit: bool = True
    archive: bool = True  # False: not sent to the archive (SAE)
    archive_batch: SingleLine | None = Field(default=None, min_length=1, max_length=100)
    sign: bool = False  # run the sign step (tenant connector `signature`: seal or i-Parapheur)
    signature_subtype: SingleLine | None = Field(default=None, max_length=100)  # i-Parapheur
    parapheur_metadata: dict[SingleLine, FolderValue] = Field(  # i-Parapheur folder
        default_factory=dict, max_length=50)


def metadata_model(name: str) -> type[BaseModel]:
    """The pydantic model registered under ``name`` (``KeyError`` naming the known ones)."""
    try:
        return METADATA_MODELS[name]
    except KeyError:
        known = ", ".join(sorted(METADATA_MODELS))
        raise KeyError(f"unknown metadata model {name!r} (known: {known})") from None
