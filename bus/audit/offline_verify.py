#!/usr/bin/env python3
"""Offline check of a demat-bus proof bundle: Python 3 standard library only.

Run in the bundle folder: ``python3 verify_inclusion.py``. It checks that
1. each line of ``events.jsonl`` is included in the Merkle tree whose root and
   size ``checkpoint.json`` holds (RFC 9162 section 2.1.3.2, SHA-256 with
   leaf = H(0x00 || line), node = H(0x01 || left || right)), by the audit
   paths of ``proofs.json``;
2. each event's ``hash`` is the SHA-256 of its canonical JSON without ``hash``
   (keys sorted, separators "," and ":", UTF-8), and the document's events
   chain: each ``prev_hash`` is the previous event's ``hash``.
Exit status 0 when everything holds, 1 otherwise (the failing event is named).
"""

import hashlib
import json
import sys
from pathlib import Path


def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(leaf, index, size, path, root):
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def event_hash(event):
    body = {k: v for k, v in event.items() if k != "hash"}
    data = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(data.encode()).hexdigest()


def main(folder="."):
    here = Path(folder)
    checkpoint = json.loads((here / "checkpoint.json").read_bytes())
    proofs = json.loads((here / "proofs.json").read_text())["events"]
    lines = (here / "events.jsonl").read_bytes().split(b"\n")[:-1]
    root, size = bytes.fromhex(checkpoint["root"]), checkpoint["tree_size"]
    if len(lines) != len(proofs):
        print(f"FAIL: {len(lines)} events but {len(proofs)} proofs")
        return 1
    failures, hashes, events = 0, set(), []
    for line, proof in zip(lines, proofs, strict=True):
        event = json.loads(line)
        path = [bytes.fromhex(h) for h in proof["audit_path"]]
        if not verify_inclusion(leaf_hash(line), proof["leaf_index"], size, path, root):
            print(f"FAIL: event {event['event_id']} is not in checkpoint "
                  f"{checkpoint['checkpoint']} (leaf {proof['leaf_index']})")
            failures += 1
        elif event_hash(event) != event["hash"]:
            print(f"FAIL: event {event['event_id']}: content does not match its hash")
            failures += 1
        else:
            hashes.add(event["hash"])
            events.append(event)
    for event in events:
        if event["prev_hash"] is None and event["seq"] != 1:
            print(f"FAIL: event {event['event_id']} starts a chain but is not the first")
            failures += 1
        elif event["prev_hash"] is not None and event["prev_hash"] not in hashes:
            print(f"FAIL: event {event['event_id']}: its previous event is not in the bundle")
            failures += 1
    if failures:
        return 1
    print(f"OK: {len(events)} events of the document are in checkpoint "
          f"{checkpoint['checkpoint']} (tree of {size} leaves, root {checkpoint['root']}) "
          "and form one hash chain")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
