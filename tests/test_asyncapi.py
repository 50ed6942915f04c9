"""The AsyncAPI document of the topics: complete, and built from the contract models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bus.asyncapi import asyncapi_document
from bus.broker import encode
from bus.topics import Topics
from schemas.envelope import Envelope, FileRef
from schemas.messages import SubmitMessage

ROOT = Path(__file__).resolve().parents[1]


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [node["$ref"]] if "$ref" in node else [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _resolve(doc: dict, ref: str) -> Any:
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def test_every_reference_resolves_and_channels_are_the_topics() -> None:
    doc = asyncapi_document(Topics("city"), version="1.2.3", servers={"prod": "kafka:9092"})
    assert doc["asyncapi"] == "3.0.0" and doc["info"]["version"] == "1.2.3"
    assert doc["servers"]["prod"] == {"host": "kafka:9092", "protocol": "kafka"}
    assert {c["address"] for c in doc["channels"].values()} == {"city.submit", "city.journal",
                                                                "city.dlq"}
    refs = _refs(doc)
    assert refs and all(_resolve(doc, ref) is not None for ref in refs)
    assert doc["operations"]["submitDocument"]["action"] == "send"


def test_a_submit_message_as_the_sdk_writes_it_matches_the_documented_schema() -> None:
    doc = asyncapi_document(Topics(), version="0")
    schemas = doc["components"]["schemas"]
    env = Envelope(tenant="214502494", flow="document", metadata={"title": "t"},
                   files=[FileRef(sha256="a" * 64, size=1, media_type="application/pdf",
                                  name="a.pdf")])
    wire = json.loads(encode(SubmitMessage(envelope=env)))
    submit = schemas["SubmitMessage"]
    assert set(wire) <= set(submit["properties"])
    envelope = schemas["Envelope"]
    assert set(envelope["required"]) <= set(wire["envelope"])
    assert set(wire["envelope"]) <= set(envelope["properties"])
    assert schemas["FileRef"]["properties"]["sha256"]["pattern"] == "^[0-9a-f]{64}$"


def test_the_command_prints_the_document_without_a_running_bus(tmp_path: Path) -> None:
    out = tmp_path / "asyncapi.json"
    run = subprocess.run([sys.executable, "-m", "bus.cli", "asyncapi", "--out", str(out)],
                         capture_output=True, text=True, cwd=ROOT, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "DEMAT_VAR_DIR": str(tmp_path)})
    assert run.returncode == 0, run.stderr
    assert json.loads(out.read_text())["channels"]["submit"]["address"] == "demat.submit"
