"""XML schemas: loaded once per process (safely from several threads), offline, and
their verdicts in one form (``xsd_errors``)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from lxml import etree

T = TypeVar("T")


def schema_loader(load: Callable[..., T]) -> Callable[..., T]:
    """Cache ``load`` and serialise its calls: lxml fails spuriously (unresolved imports)
    when threads build the same schema at once, as step workers do on their first tasks."""
    cached = functools.cache(load)
    lock = threading.Lock()

    @functools.wraps(load)
    def loader(*args: object) -> T:
        with lock:
            return cached(*args)

    return loader


def safe_parser(**options: bool) -> etree.XMLParser:
    """A parser that never reaches the network nor expands entities (XXE, billion laughs)."""
    return etree.XMLParser(no_network=True, resolve_entities=False, **options)


class _LocalImports(etree.Resolver):
    """Resolve a schema's imports of W3C schemas (xml.xsd, xlink.xsd) to local copies."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder

    def resolve(self, url, pubid, context):  # type: ignore[no-untyped-def]
        if url.startswith(("http://", "https://")):
            local = self.folder / url.rsplit("/", 1)[-1]
            if local.exists():
                return self.resolve_filename(str(local), context)
        return None


@schema_loader
def load_xsd(path: str | Path, local_imports: Path | None = None) -> etree.XMLSchema:
    """The compiled schema at ``path`` (once per process); ``local_imports``: a folder
    holding the copies of the remote schemas it imports."""
    parser = safe_parser()
    if local_imports is not None:
        parser.resolvers.add(_LocalImports(local_imports))
    return etree.XMLSchema(etree.parse(str(path), parser))


@dataclass(frozen=True)
class XsdError:
    """One schema violation: where, and what the validator said."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def xsd_errors(schema: etree.XMLSchema, doc: etree._Element | etree._ElementTree
               ) -> list[XsdError]:
    """Every violation of ``schema`` in ``doc`` (empty when valid)."""
    if schema.validate(doc):
        return []
    return [XsdError(e.line, e.message) for e in schema.error_log.filter_from_errors()]
