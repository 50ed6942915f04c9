"""The plug-in registry: what flow families add to the bus, registered where it is defined.

A flow family (``workers/<family>/``) is a Python package that the bus imports at
start-up; importing it registers its step kinds (``workers.step.step``), intake
checks, demo documents, CLI commands, HTTP API routers, extra service groups and flow
folders here.
Packages are found through the ``demat.plugins`` entry points (``pyproject.toml``)
and the ``DEMAT_PLUGINS`` setting (comma-separated module names, for site or test
families). The kernel never names a family: it asks this registry.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from importlib import import_module
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

log = logging.getLogger("demat.plugins")

ENTRY_POINT_GROUP = "demat.plugins"

# ``async (call: StepCall) -> StepResultData | Waiting`` (see ``bus.steps``)
StepHandler = Callable[[Any], Awaitable[Any]]
# ``async (runtime, envelope, *, at_intake: bool) -> None``, raising ``SubmissionError``
FlowCheck = Callable[..., Awaitable[None]]
# ``(round: int) -> list[DemoDocument]``; ``async (client, count) -> list[dict]`` for imports
DemoSource = Callable[[int], list[Any]]
DemoImport = Callable[[Any, int], Awaitable[list[dict]]]
CommandAdder = Callable[[argparse._SubParsersAction], None]
# ``(app, broker, runtime) -> None``: wires a service group into a FastStream app
GroupRegistrar = Callable[[Any, Any, Any], None]


class PluginError(ValueError):
    """Two plug-ins claim the same name, or a plug-in module cannot be loaded."""


@dataclass
class Registry:
    """Everything the loaded plug-ins registered, by name."""

    steps: dict[str, StepHandler] = field(default_factory=dict)
    chainable: set[str] = field(default_factory=set)  # kinds run right after the step before
    checks: dict[str, FlowCheck] = field(default_factory=dict)
    demo_sources: list[DemoSource] = field(default_factory=list)
    demo_imports: list[DemoImport] = field(default_factory=list)
    commands: list[CommandAdder] = field(default_factory=list)
    api_routers: list[Any] = field(default_factory=list)  # FastAPI ``APIRouter`` objects
    groups: dict[str, GroupRegistrar] = field(default_factory=dict)
    flow_dirs: list[Path] = field(default_factory=list)
    # functions a family offers the front doors by name (``"actes.cancellation"``)
    provided: dict[str, Callable[..., Any]] = field(default_factory=dict)
    loaded: list[str] = field(default_factory=list)

    def add_step(self, kind: str, handler: StepHandler, *, chainable: bool = False) -> None:
        """Register ``handler`` as step ``kind``; ``chainable``: it needs no partner's
        answer to start (local work, or a call whose effect is idempotent), so a worker
        may run it right after the step before it in one task."""
        _claim(self.steps, kind, handler, "step kind")
        if chainable:
            self.chainable.add(kind)

    def step(self, kind: str) -> StepHandler:
        """The handler of step ``kind`` (``KeyError`` naming the known kinds)."""
        try:
            return self.steps[kind]
        except KeyError:
            raise KeyError(f"unknown step kind {kind!r} (known: "
                           f"{', '.join(sorted(self.steps))})") from None

    def step_kinds(self) -> list[str]:
        return sorted(self.steps)

    def flow_check(self, *flows: str) -> Callable[[FlowCheck], FlowCheck]:
        """Decorator: run ``fn`` at intake (and in ``validate``) for documents of ``flows``."""
        def register(fn: FlowCheck) -> FlowCheck:
            for flow in flows:
                _claim(self.checks, flow, fn, "flow check of")
            return fn
        return register

    def demo(self, fn: DemoSource) -> DemoSource:
        """Decorator: ``fn(round)`` returns demo documents joining ``demat demo``."""
        self.demo_sources.append(fn)
        return fn

    def demo_import(self, fn: DemoImport) -> DemoImport:
        """Decorator: ``fn(client, count)`` submits demo documents by other means."""
        self.demo_imports.append(fn)
        return fn

    def command(self, fn: CommandAdder) -> CommandAdder:
        """Decorator: ``fn(subparsers)`` adds the family's ``demat`` commands."""
        self.commands.append(fn)
        return fn

    def add_api_router(self, router: Any) -> None:
        """Serve ``router`` (a FastAPI ``APIRouter``) in ``demat serve``; each of its routes
        declares its permission like the kernel's (``bus.api.auth.permission``)."""
        if router not in self.api_routers:
            self.api_routers.append(router)

    def group(self, name: str) -> Callable[[GroupRegistrar], GroupRegistrar]:
        """Decorator: ``fn(app, broker, runtime)`` runs service group ``name``."""
        def register(fn: GroupRegistrar) -> GroupRegistrar:
            _claim(self.groups, name, fn, "service group")
            return fn
        return register

    def provides(self, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: offer ``fn`` as ``name`` to the front doors, which must not import
        ``workers/`` (the Pastell door asks ``actes.cancellation``)."""
        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            _claim(self.provided, name, fn, "provided function")
            return fn
        return register

    def provider(self, name: str) -> Callable[..., Any] | None:
        """The function offered as ``name``, ``None`` when no loaded family offers it."""
        return self.provided.get(name)

    def flows_in(self, directory: Path) -> None:
        """Load the flow definitions (``*.yaml``) of ``directory`` too."""
        if directory not in self.flow_dirs:
            self.flow_dirs.append(directory)


def _claim(table: dict[str, Any], name: str, value: Any, what: str) -> None:
    current = table.get(name)
    if current is not None and _origin(current) != _origin(value):
        raise PluginError(f"{what} {name!r} is registered twice: by {_origin(current)} "
                          f"and by {_origin(value)}")
    table[name] = value


def _origin(fn: Any) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', '?')}"


REGISTRY = Registry()


def plugin_modules(extra: Iterable[str] = ()) -> list[str]:
    """Module names of the installed plug-ins (entry points), then of ``extra``."""
    names = [ep.value for ep in sorted(entry_points(group=ENTRY_POINT_GROUP),
                                       key=lambda ep: ep.name)]
    return names + [m for m in extra if m and m not in names]


def load_plugins(extra: Iterable[str] = ()) -> Registry:
    """Import every plug-in module once (each registers itself); return the registry."""
    for name in plugin_modules(extra):
        if name in REGISTRY.loaded:
            continue
        try:
            import_module(name)
        except ImportError as exc:
            raise PluginError(f"plug-in {name!r} cannot be loaded: {exc}") from exc
        REGISTRY.loaded.append(name)
        log.debug("plug-in %s loaded", name)
    return REGISTRY
