"""Loading XML schemas once per process, safely from several threads."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import TypeVar

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
