"""``demat backup`` / ``demat restore``: what a bus cannot rebuild, to a folder and back.

A backup folder holds, each item listed with its SHA-256 in ``manifest.json``:

- ``tables/*.csv``: the database tables nothing rebuilds (``bus.backup.tables``);
- ``objects/main/…``: every object of the bus bucket (files and artefacts, encrypted
  ones as stored, webhook subscriptions, upload records…);
- ``objects/journal/…``: the journal bucket (segments, checkpoints, signatures,
  time-stamps, public keys, TSA CAs);
- ``config/``: the tenants file, each flow definition, the settings without secrets
  and the configuration digest the router journals;
- ``keys.json``: key identifiers and sources, no key (``bus.backup.keys``).

Order: the tables first, then the bus bucket, then the journal, so every state's files
and journal events were written before they are copied (a restored state never names
a later file or event). Kafka is not backed up: a document in flight at backup time
has its state but not its next message; ``demat backup`` names how many there are
(back up a drained bus, or replay them after a restore).

The index (events, documents, search keys) is rebuilt from the journal on restore.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from bus.audit.config import configuration_message
from bus.audit.sealer import segment_lines
from bus.audit.store import SEGMENTS, JournalStore
from bus.backup.keys import key_problems, keys_metadata
from bus.backup.manifest import Backup, BackupError, Writer, open_backup
from bus.backup.objects import dump_bucket, load_bucket, object_count
from bus.backup.tables import dump_tables, load_tables, nonempty_tables, revision
from bus.index import Index
from bus.runtime import Runtime
from schemas.envelope import utcnow
from schemas.messages import TERMINAL_STATES, JournalEvent

__all__ = ["BackupError", "backup", "rebuild_index", "restore"]
SECRET_WORDS = ("password", "secret", "access_key")  # settings never written to a backup


@dataclass
class Outcome:
    """What a backup or a restore did, for the operator."""

    counts: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def backup(runtime: Runtime, to: Path) -> Outcome:
    """Write a backup of the bus ``runtime`` runs on into the new folder ``to``."""
    settings, store = runtime.settings, runtime.store
    writer, outcome = Writer(to), Outcome()
    outcome.counts["rows"] = dump_tables(settings.database, writer)
    outcome.counts["in_flight"] = _in_flight(settings.database)
    encrypted = dump_bucket(store.client, store.bucket, writer, "main")
    journal = JournalStore(settings, store)
    dump_bucket(journal.client, journal.bucket, writer, "journal")
    _dump_config(runtime, writer)
    writer.write_json("keys.json", keys_metadata(
        settings, [t.siren for t in runtime.tenants], encrypted))
    outcome.counts["items"] = len(writer.items)
    if outcome.counts["in_flight"]:
        outcome.warnings.append(
            f"{outcome.counts['in_flight']} document(s) not in a terminal state: their next "
            "message is in Kafka, not in this backup (replay them after a restore)")
    writer.close({"bucket": store.bucket, "journal_bucket": journal.bucket,
                  "revision": revision(settings.database), "made_at": utcnow().isoformat(),
                  "counts": outcome.counts})
    return outcome


def _in_flight(url: str) -> int:
    with psycopg.connect(url) as db:
        return db.execute("SELECT count(*) FROM document_states WHERE NOT (state = ANY(%s))",
                          ([s.value for s in TERMINAL_STATES],)).fetchone()[0]


def _dump_config(runtime: Runtime, writer: Writer) -> None:
    path = runtime.settings.tenants_path
    with path.open("rb") as fh:
        writer.write_stream("config/tenants.yaml", iter(lambda: fh.read(1 << 20), b""),
                            source=str(path))
    for name in runtime.flows.names():
        writer.write_json(f"config/flows/{name}.json",
                          runtime.flows.get(name).model_dump(mode="json"))
    writer.write_json("config/settings.json", public_settings(runtime))
    writer.write_json("config/digest.json", configuration_message(runtime).model_dump(
        mode="json"))


def public_settings(runtime: Runtime) -> dict[str, Any]:
    """The settings, without any secret (passwords, secret keys, the index secret)."""
    return {k: v for k, v in runtime.settings.model_dump(mode="json").items()
            if not any(word in k for word in SECRET_WORDS)}


def restore(runtime: Runtime, source: Path) -> Outcome:
    """Check the backup ``source`` whole, check the target is empty and has the same
    keys, then write the tables and buckets back and rebuild the index."""
    backup_ = open_backup(source)
    _check_target(runtime, backup_)
    settings, store, outcome = runtime.settings, runtime.store, Outcome()
    outcome.counts["rows"] = load_tables(settings.database, backup_)
    outcome.counts["objects"] = load_bucket(store.client, store.bucket, backup_, "main")
    journal = JournalStore(settings, store)
    locked = journal.ensure()
    outcome.counts["journal_objects"] = load_bucket(journal.client, journal.bucket, backup_,
                                                    "journal", locked=locked)
    outcome.counts["events_indexed"] = rebuild_index(runtime)
    outcome.warnings += config_differences(runtime, backup_)
    return outcome


def _check_target(runtime: Runtime, backup_: Backup) -> None:
    problems = key_problems(runtime.settings, backup_.json("keys.json"))
    if problems:
        raise BackupError("the keys here cannot read this backup: " + "; ".join(problems))
    store, journal = runtime.store, JournalStore(runtime.settings, runtime.store)
    for bucket in (store.bucket, journal.bucket):
        if object_count(store.client, bucket):
            raise BackupError(f"bucket {bucket} is not empty: restore into a new deployment "
                              "(new buckets, fresh database)")
    full = nonempty_tables(runtime.settings.database)
    if full:
        raise BackupError(f"the database is not empty (table {full[0]} has rows): restore "
                          "into a fresh database")


def config_differences(runtime: Runtime, backup_: Backup) -> list[str]:
    """The flows and tenants whose configuration here differs from the backed-up one."""
    was = backup_.json("config/digest.json")["parts"]
    now = configuration_message(runtime).parts
    return [f"{part}: {'missing here' if part not in now else 'differs here'} (the backed-up "
            f"one is in config/ of the backup)" for part in sorted(was) if now.get(part)
            != was[part]] + [f"{part}: new here" for part in sorted(set(now) - set(was))]


def rebuild_index(runtime: Runtime) -> int:
    """Add every journaled event of the segments to the index (``demat audit reindex``);
    the number of events added."""
    journal = JournalStore(runtime.settings, runtime.store)
    index = Index(runtime.settings.database)
    added = 0
    for key in journal.numbered(SEGMENTS, "jsonl"):
        events = [JournalEvent.model_validate_json(line)
                  for line in segment_lines(journal.get(key) or b"")]
        added += index.add(events)
    return added
