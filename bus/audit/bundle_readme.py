# ruff: noqa: E501
"""Template of the README.md of a proof bundle (``str.format`` fields)."""

TEMPLATE = """# Proof bundle of document {doc_id}

Made by demat-bus on {made_at} from checkpoint {k} of the bus journal
({size} events in the whole journal, Merkle root `{root}`).

| file | what it is |
|---|---|
| `events.jsonl` | the document's {n} journal events, byte for byte as sealed (one per line) |
| `proofs.json` | for each event: its leaf index and RFC 9162 audit path in the checkpoint tree |
| `checkpoint.json` | the checkpoint: tree size, root, sealed segments and their SHA-256, previous checkpoint's SHA-256 |
| `checkpoint.sig` | Ed25519 signature of `checkpoint.json` by the bus key |
| `bus-ed25519.pub.pem` | the bus's public key (key id `{key_id}`) |
| `checkpoint.tsr` | RFC 3161 time-stamp reply over `checkpoint.json` |
| `tsa.pem`, `tsa-ca.pem` | the time-stamping authority's certificate and its CA |
| `verify_inclusion.py` | inclusion proof and hash-chain check, Python 3 standard library only |
{unsealed}
## How to verify (offline)

Run in this folder; every command must print OK / Verified / succeed:

```sh
openssl ts -verify -data checkpoint.json -in checkpoint.tsr -CAfile tsa-ca.pem
openssl pkeyutl -verify -pubin -inkey bus-ed25519.pub.pem -rawin -in checkpoint.json -sigfile checkpoint.sig
python3 verify_inclusion.py
```

1. `openssl ts -verify` proves `checkpoint.json` existed, unchanged, at the time in the
   token (`openssl ts -reply -in checkpoint.tsr -text` shows it), under a TSA chained to
   `tsa-ca.pem` (compare that CA with the one your TSA publishes).
2. `openssl pkeyutl -verify` proves the bus (its key, published in its journal bucket
   under `journal/keys/`) signed that checkpoint.
3. `verify_inclusion.py` proves each event of `events.jsonl` is a leaf of the checkpoint's
   tree: with leaf = SHA-256(0x00 || line) and node = SHA-256(0x01 || left || right), the
   audit path of `proofs.json` rebuilds `root` for a tree of `tree_size` leaves
   (RFC 9162 section 2.1.3.2). It also checks each event's `hash` (SHA-256 of the event's
   JSON without `hash`, keys sorted, separators `,` `:`, UTF-8) and that each `prev_hash`
   is the previous event's `hash`: the document's history is one unbroken chain.

Later checkpoints each hold the SHA-256 of the one before (`prev_checkpoint`), so a
newer checkpoint of the same bus extends this proof: `demat audit verify` checks them all.
"""
