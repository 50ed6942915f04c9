"""What every ``demat`` command prints with: the consoles and the error line."""

from __future__ import annotations

from rich.console import Console

console = Console(stderr=True, soft_wrap=True)  # progress, warnings, errors
out = Console()  # results


def fail(message: str) -> int:
    """Print ``error: message`` on stderr; the exit code of a refused command."""
    console.print(f"[red]error:[/] {message}")
    return 2
