"""``demat search`` takes its key options from the flows' declared search keys."""

from __future__ import annotations

import argparse

import pytest

from bus.cli import audit
from bus.runtime import Runtime
from bus.search import declared_keys


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    audit.add_commands(parser.add_subparsers())
    return parser


def test_every_declared_search_key_is_an_option_and_nothing_else() -> None:
    flows = Runtime().flows  # the bus's flows, with those of the loaded flow families
    declared = {k for name in flows.names() for k in flows.get(name).search_keys}
    args = _parser().parse_args(["search"])
    options = {name.removeprefix("key_") for name in vars(args) if name.startswith("key_")}
    assert options == declared
    assert {"acte_number", "ensap_lot", "deposit_location"} <= options
    assert declared_keys(flows)["acte_id"] == ["acte", "hr-contract", "hr-decree"]


def test_undeclared_shortcuts_are_gone() -> None:
    with pytest.raises(SystemExit):  # no flow declares official_id
        _parser().parse_args(["search", "--official-id", "X"])


def test_options_and_key_pairs_become_search_pairs() -> None:
    args = _parser().parse_args(["search", "--acte-number", "2026-12", "--ensap-lot", "L1",
                                 "--key", "period=2026-11"])
    assert audit.search_keys_of(args) == [("acte_number", "2026-12"), ("ensap_lot", "L1"),
                                          ("period", "2026-11")]
