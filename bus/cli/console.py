"""What every ``demat`` command prints with: the consoles, the error line, and ``shown``
(user-provided text made safe to print, ``bus.terminal``)."""

from __future__ import annotations

from rich.console import Console

from bus.terminal import shown

__all__ = ["console", "fail", "out", "shown"]

console = Console(stderr=True, soft_wrap=True)  # progress, warnings, errors
out = Console()  # results


def fail(message: str) -> int:
    """Print ``error: message`` on stderr; the exit code of a refused command."""
    console.print(f"[red]error:[/] {shown(message)}")
    return 2
