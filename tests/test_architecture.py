"""The rooms of the house and who may import whom (README, "Folders"), read from the
source with ``ast``: a forbidden arrow, a circle or a hidden import fails here."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("schemas", "connectors", "bus", "workers")
FAMILIES = ("actes", "finance", "payroll", "hr")
# declared exceptions to "a family never imports another": an HR act is an acte
FAMILY_EXCEPTIONS = {("hr", "actes")}
# i-Parapheur's simulator signs what its signers approve with the bus's local seal
PARTNER_EXCEPTIONS = {("iparapheur", "seal")}
FRONT_DOORS = ("bus.cli", "bus.client", "bus.export", "bus.operator", "bus.api", "bus.glaneur",
               "bus.console")
SHARED_CONNECTOR_FILES = ("connectors.errors", "connectors.http", "connectors.simulator",
                          "connectors.registry", "connectors.deposit", "connectors.frames",
                          "connectors.pdfgen", "connectors.private")
MAX_LINES = 500


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported module (resolved to a module of the project)
    line: int
    nested: bool  # inside a function or class body


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


MODULES = _modules()


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        parts = module.split(".") if is_package else module.split(".")[:-1]
        parts = parts[:len(parts) - node.level + 1]
        base = ".".join([*parts, *([node.module] if node.module else [])])
    return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
            for alias in node.names]


def _imports_of(module: str, path: Path) -> Iterator[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        seen: set[str] = set()
        for name in _targets(node, module, path.name == "__init__.py"):
            target = _resolve(name) if name.split(".")[0] in PACKAGES else None
            if target and target != module and target not in seen:
                seen.add(target)
                yield Import(module, target, node.lineno, id(node) not in top)


IMPORTS = [imp for module, path in MODULES.items() for imp in _imports_of(module, path)]


def _room(module: str) -> str:
    """The room of a module, as the README's folder table names them."""
    parts = module.split(".")
    if parts[0] == "bus":
        if len(parts) > 1 and parts[1] in ("dev", "cli", "services", "audit"):
            return f"bus.{parts[1]}"
        return "front door" if module.startswith(FRONT_DOORS) else "kernel"
    if parts[0] == "workers" and len(parts) > 1 and parts[1] in FAMILIES:
        return f"family {parts[1]}"
    return parts[0]


def _forbidden(imp: Import) -> str | None:
    """Why ``imp`` breaks a rule of the house, or None."""
    src, dst = _room(imp.source), _room(imp.target)
    if src == "schemas" and dst != "schemas":
        return "schemas/ imports nothing outside schemas/"
    if src == "connectors" and dst not in ("connectors", "schemas"):
        return "connectors/ may import schemas/ and connectors/ only"
    if src == "connectors" and dst == "connectors":
        pair = (imp.source.split(".")[1], imp.target.split(".")[1])
        if (pair[0] != pair[1] and imp.target not in SHARED_CONNECTOR_FILES
                and pair not in PARTNER_EXCEPTIONS):
            return "a partner imports only its own folder and the shared connector files"
    if src in ("kernel", "bus.services", "bus.audit") and (
            dst.startswith(("workers", "family")) or dst in ("bus.dev", "bus.cli")):
        return "the kernel never imports workers/, bus/dev/ or the CLI"
    if src in ("front door", "bus.cli") and dst.startswith(("workers", "family")):
        return "front doors never import workers/: a family offers them what they need " \
               "(bus.plugins, REGISTRY.provides)"
    if src == "kernel" and dst in ("bus.services", "front door"):
        return "the kernel does not import the services or the front doors"
    if dst == "bus.dev" and src not in ("bus.cli", "bus.dev"):
        return "only the CLI imports bus/dev/"
    if src.startswith(("workers", "family")) and dst in ("bus.cli", "bus.dev"):
        return "workers/ never import the CLI or bus/dev/"
    if src.startswith("family") and dst.startswith("family") and src != dst:
        pair = (src.split()[1], dst.split()[1])
        if pair not in FAMILY_EXCEPTIONS:
            return "a flow family never imports another (declare any exception)"
    if src == "workers" and dst.startswith("family"):
        return "workers.step, workers.common and workers.archive never import a family"
    return None


def test_no_forbidden_arrow() -> None:
    bad = [f"{i.source}:{i.line} -> {i.target}: {why}"
           for i in IMPORTS if (why := _forbidden(i))]
    assert not bad, "\n".join(bad)


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for imp in IMPORTS:
        if not imp.target.startswith(imp.source + "."):  # a package registering its modules
            graph[imp.source].add(imp.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_circles() -> None:
    assert not _cycles(), _cycles()


def test_imports_are_at_the_top() -> None:
    hidden = [f"{i.source}:{i.line} imports {i.target}" for i in IMPORTS if i.nested]
    assert not hidden, "\n".join(hidden)


@pytest.mark.parametrize("package", PACKAGES)
def test_no_file_over_500_lines(package: str) -> None:
    long = [f"{p.relative_to(ROOT)}: {n}" for p in (ROOT / package).rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES]
    assert not long, long


def test_the_rules_catch_a_forbidden_arrow() -> None:
    """The checker itself fails on the arrows this issue removed."""
    assert _forbidden(Import("connectors.ensap.package", "bus.crypto", 1, False))
    assert _forbidden(Import("bus.runtime", "workers.step", 1, False))
    assert _forbidden(Import("workers.finance.demo", "workers.payroll.demo", 1, False))
    assert _forbidden(Import("schemas.acte", "bus.tenants", 1, False))
    assert _forbidden(Import("workers.hr.checks", "workers.actes.checks", 1, False)) is None
