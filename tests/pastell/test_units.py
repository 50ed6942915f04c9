"""The Pastell door's and the glaneur's parts that need no bus: parameters as PHP reads
them, v1 answers, state names, manifests, file patterns, static metadata, names."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bus.api.pastell.http import Params
from bus.api.pastell.legacy import strings
from bus.api.pastell.model import last_action, missing_field
from bus.glaneur.config import GlaneurError, GlaneurSettings, load
from bus.glaneur.items import Gleaned, ItemRefused, glean, unzip
from bus.glaneur.run import vrac_items
from bus.glaneur.service import serve
from bus.glaneur.sources import free_name
from bus.pastell.flux import FLUX
from bus.plugins import REGISTRY, load_plugins
from schemas.messages import DocState, DocumentState, ErrorInfo

MANIFEST = b"""<?xml version="1.0"?>
<flux type="ls-actes"><param name="ignored" value="x"/>
  <data name="objet" value="D\xc3\xa9lib\xc3\xa9ration"/><data name="type_pj" value='["99_DE"]'/>
  <files name="arrete"><file content="acte.pdf"/></files>
  <files name="autre_document_attache"><file content="a1.pdf"/><file content="a2.pdf"/></files>
</flux>"""


def _settings(**kw: object) -> GlaneurSettings:
    return GlaneurSettings(name="t", id_e="1", directory="/in", directory_send="/s",
                           directory_error="/e", **kw)


def test_params_read_php_arrays_in_index_order() -> None:
    params = Params([("type_pj[1]", "b"), ("type_pj[0]", "a"), ("id_d[]", "x"),
                     ("id_d[]", "y"), ("libelle", "L")])
    assert params.array("type_pj") == ["a", "b"] and params.array("id_d") == ["x", "y"]
    assert params.fields() == [("libelle", "L")] and params.get("nope", "d") == "d"


def test_v1_answers_are_strings_and_lists_stay_lists() -> None:
    assert strings({"result": True, "n": 0, "none": None, "l": [1, False], "d": {2: 3}}) == {
        "result": "1", "n": "0", "none": "", "l": ["1", ""], "d": {"2": "3"}}


def _state(state: DocState, step: str | None) -> DocumentState:
    now = datetime.now(UTC)
    error = ErrorInfo(error_class="x", message="refusé") if state in (
        DocState.ERROR, DocState.REJECTED) else None
    return DocumentState(doc_id="d1", state=state, current_step=step, error=error,
                         created_at=now, updated_at=now)


@pytest.mark.parametrize(("state", "step", "flux", "name"), [
    (DocState.RUNNING, "sign", "ls-actes", "send-iparapheur"),
    (DocState.WAITING, "acknowledgement", "ls-actes", "send-tdt"),
    (DocState.ERROR, "transmit", "ls-actes", "tdt-error"),
    (DocState.REJECTED, "sign", "ls-document-pdf", "rejet-iparapheur"),
    (DocState.ERROR, "archive", "ls-document-pdf", "erreur-envoie-sae"),
    (DocState.COMPLETED, "archive", "ls-actes", "termine"),
    (DocState.COMPLETED, "deposit", "actes-generique", "acquiter-tdt"),
])
def test_state_names_of_the_incumbent(state: DocState, step: str, flux: str, name: str
                                      ) -> None:
    record = {"actions": [{"action": "orientation", "message": "", "date": ""}]}
    found = last_action(FLUX[flux], record, _state(state, step))
    assert found["action"] == name
    if state in (DocState.ERROR, DocState.REJECTED):
        assert found["message"] == "refusé"  # the bus's reason


def test_a_draft_is_valid_with_its_main_file_and_required_fields() -> None:
    flux = FLUX["ls-document-pdf"]
    record = {"data": {"libelle": "x"}, "files": {}}
    assert "document" in missing_field(flux, record)
    record["files"]["document"] = [{"name": "a.pdf"}]
    assert missing_field(flux, record) == ""
    record["data"]["libelle"] = " "
    assert "Libellé" in missing_field(flux, record)


def test_manifest_wins_and_names_its_files() -> None:
    files = {"manifest.xml": MANIFEST, "acte.pdf": b"1", "a1.pdf": b"2", "a2.pdf": b"3"}
    found = glean(_settings(manifest_type="xml", flux_name="other"), files)
    assert found.flux == "ls-actes" and found.fields["objet"] == "Délibération"
    assert found.fields["type_pj"] == '["99_DE"]'
    assert [n for n, _ in found.files["autre_document_attache"]] == ["a1.pdf", "a2.pdf"]
    with pytest.raises(ItemRefused, match="absent"):
        glean(_settings(manifest_type="xml"), {"manifest.xml": MANIFEST, "acte.pdf": b"1"})
    with pytest.raises(ItemRefused, match=r"manifest\.xml"):
        glean(_settings(manifest_type="xml"), {"acte.pdf": b"1"})
    with pytest.raises(ItemRefused, match="not well-formed"):
        glean(_settings(manifest_type="xml"), {"manifest.xml": b"<flux", "a": b""})


def test_patterns_captures_and_static_metadata() -> None:
    settings = _settings(flux_name="ls-document-pdf",
                         file_preg_match="document: #^(L[0-9]+)\\.PDF$#i\n"
                                         "annexe: #^$matches[0][1]-annexe#\nautres: .*",
                         metadata_static="libelle: Lettre $matches[0][1] (%document%)")
    found = glean(settings, {"l42.pdf": b"1", "l42-annexe.txt": b"2", "x.csv": b"3"})
    assert {k: [n for n, _ in v] for k, v in found.files.items()} == {
        "document": ["l42.pdf"], "annexe": ["l42-annexe.txt"], "autres": ["x.csv"]}
    assert found.files["annexe"][0][1] == b"2"
    assert found.fields == {"libelle": "Lettre l42 (l42.pdf)"}
    with pytest.raises(ItemRefused, match="invalide"):
        glean(_settings(flux_name="f", file_preg_match="document: ("), {"a": b""})
    with pytest.raises(ItemRefused, match="aucune capture"):
        glean(_settings(flux_name="f", metadata_static="x: $matches[3][1]"), {"a": b""})


def test_loose_files_make_one_item_per_leading_file() -> None:
    settings = _settings(type_depot="VRAC", file_preg_match="document: ^p([0-9])\\.pdf$\n"
                                                             "annexe: ^p$matches[0][1]-")
    items = vrac_items(settings, ["p2.pdf", "p1-a.pdf", "p1.pdf", "p2-a.pdf", "zz.txt"])
    assert items == [("p1.pdf", ["p1.pdf", "p1-a.pdf"]), ("p2.pdf", ["p2.pdf", "p2-a.pdf"])]


def test_a_corrupt_zip_is_refused_with_its_name() -> None:
    with pytest.raises(ItemRefused, match=r"x\.zip : archive ZIP illisible"):
        unzip(b"PK\x03\x04garbage", "x.zip")


def test_free_names_add_a_number() -> None:
    assert free_name("a.zip", set()) == "a.zip"
    assert free_name("a.zip", {"a.zip", "a-1.zip"}) == "a-2.zip"
    assert Gleaned("f", files={"d": [("a", b""), ("b", b"")]}).file_names == ["a", "b"]


def test_bad_settings_name_the_field(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("api: x\nglaneurs: [{name: n}]\n")
    with pytest.raises(GlaneurError, match="token"):
        load(bad)
    assert serve(bad) == 2 and "token" in capsys.readouterr().err
    bad.write_text("token: t\nglaneurs: [{name: n, id_e: '1', directory: /in, "
                   "directory_send: /s, directory_error: /e, type_depot: TAR}]\n")
    with pytest.raises(GlaneurError, match="type_depot"):
        load(bad)


def test_the_actes_family_offers_the_door_what_it_needs() -> None:
    """The door asks the registry (it never imports ``workers/``)."""
    load_plugins()
    assert REGISTRY.provider("actes.cancellation").__module__ == "workers.actes.acte"
    assert REGISTRY.provider("actes.classification").__name__ == "current_classification"
    assert REGISTRY.provider("nobody.offers") is None
