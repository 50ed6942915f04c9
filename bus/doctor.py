"""``demat doctor``: a deployment checked end to end, each finding in words.

Configuration (flows against tenants and step kinds), the broker, the object store and
the index database answer, the database schema is the one this bus expects, the topics
exist, every service group has a live process with partitions, the journal is being
sealed, and the dead letters waiting for an operator.
"""

from __future__ import annotations

import time

from bus import index_migrations
from bus.audit.store import CHECKPOINTS, SEGMENTS, JournalStore
from bus.flows import FlowConfigError
from bus.health import Check, assignment, liveness, reachability
from bus.index import Index
from bus.runtime import Runtime

# the groups every deployment runs (the others, e.g. webhooks or batcher, may be absent)
REQUIRED = ("intake", "router", "steps", "journal", "delays", "sealer")
WHAT_STOPS = {"intake": "submissions are not checked", "router": "documents do not move",
              "steps": "no step runs", "journal": "status and search are not updated",
              "delays": "retries and partner polls never come back",
              "sealer": "the journal is not sealed"}


def diagnose(runtime: Runtime, groups: list[str]) -> list[Check]:
    """Every check, in order; later checks are skipped when what they need is down."""
    checks = [_configuration(runtime), *reachability(runtime.settings)]
    up = {c.name for c in checks if c.ok}
    if "index" in up:
        checks += [_schema(runtime), _dead_letters(runtime)]
    if "store" in up:
        checks.append(_sealing(runtime))
    for group in groups:
        live = liveness(runtime.settings, group)
        if not live.ok and group not in REQUIRED:
            live.warning, live.detail = True, live.detail + " (optional group)"
        elif not live.ok:
            live.detail += f": {WHAT_STOPS.get(group, 'its work waits')}"
        checks.append(live)
        if live.ok:
            checks.append(assignment(runtime.settings, group))
    return checks


def _configuration(runtime: Runtime) -> Check:
    try:
        runtime.check()
    except (FlowConfigError, ValueError, KeyError, OSError) as exc:
        return Check("configuration", False, str(exc))
    return Check("configuration", True, f"{len(runtime.flows.names())} flow(s), "
                 f"{len(list(runtime.tenants))} tenant(s)")


def _schema(runtime: Runtime) -> Check:
    now = index_migrations.current(runtime.settings.database)
    if now != index_migrations.HEAD:
        return Check("schema", False, f"the database is at revision {now}, this bus expects "
                     f"{index_migrations.HEAD} (any bus process migrates it when it starts)")
    return Check("schema", True, f"revision {now}")


def _dead_letters(runtime: Runtime) -> Check:
    count = len(Index(runtime.settings.database).dead_letters(limit=1000))
    if count:
        return Check("dead letters", True, f"{count}{'+' if count == 1000 else ''} open "
                     "dead letter(s) wait for an operator (demat dlq list)", warning=True)
    return Check("dead letters", True, "none open")


def _sealing(runtime: Runtime) -> Check:
    """The last checkpoint's age, against the sealing interval, when segments wait."""
    journal = JournalStore(runtime.settings, runtime.store)
    checkpoints = journal.objects.list_times(CHECKPOINTS)
    segments = journal.objects.list_times(SEGMENTS)
    interval = runtime.settings.seal_interval_seconds or 300
    last = max(checkpoints.values(), default=None)
    waiting = [t for t in segments.values() if last is None or t > last]
    if last is None:
        return Check("sealing", not waiting, "no checkpoint yet" + (
            f" while {len(waiting)} segment(s) wait: is the sealer running, does its TSA "
            "answer?" if waiting else " (nothing journaled)"), warning=not waiting)
    age = time.time() - last
    if waiting and age > 3 * interval + 60:
        return Check("sealing", False, f"the last checkpoint is {age:.0f} s old and "
                     f"{len(waiting)} segment(s) wait (sealing every {interval:g} s): is the "
                     "sealer running, does its TSA answer?")
    return Check("sealing", True, f"last checkpoint {age:.0f} s ago")
