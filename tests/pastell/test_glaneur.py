"""The glaneur: a ZIP with its manifest dropped on a real SFTP server (asyncssh, on
loopback) becomes a document of the Pastell door that completes in the bus, while a
corrupt ZIP beside it goes to the error folder with its reason; loose files (VRAC) of a
local folder are grouped by their patterns, with static metadata."""

from __future__ import annotations

import asyncio
import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import httpx
import pytest
import yaml

from bus.dev.launcher import Services
from bus.glaneur.config import GlaneurSettings, SftpServer
from bus.glaneur.run import RunReport, run_once
from bus.settings import Settings
from tests.pastell.support import CITY_A, Pastell, bearer, make_callers
from workers.common.demo import minimal_pdf

pytestmark = pytest.mark.stack
LOGIN, PASSWORD = "glaneur", "mot-de-passe-sftp"
MANIFEST = """<?xml version="1.0" encoding="UTF-8"?>
<flux type="ls-document-pdf">
  <data name="libelle" value="Courrier déposé par SFTP"/>
  <files name="document"><file content="courrier.pdf"/></files>
  <files name="annexe"><file content="annexe.pdf"/></files>
</flux>
"""


class _Server(asyncssh.SSHServer):
    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return (username, password) == (LOGIN, PASSWORD)


@pytest.fixture(scope="module")
def client(api: str, services: Services, settings: Settings) -> Iterator[tuple[str, Pastell]]:
    token = make_callers(settings)["city_a"][1]
    with httpx.Client(base_url=api, timeout=30) as http:
        yield token, Pastell(http, token)


def _folders(root: Path) -> None:
    for name in ("in", "sent", "error"):
        (root / name).mkdir(parents=True)


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


async def _glean_over_sftp(root: Path, settings: GlaneurSettings, api: str, token: str
                           ) -> RunReport:
    key = asyncssh.generate_private_key("ssh-ed25519")
    server = await asyncssh.create_server(
        _Server, "127.0.0.1", 0, server_host_keys=[key],
        sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=str(root).encode()))
    port = server.sockets[0].getsockname()[1]
    sftp = SftpServer(host="127.0.0.1", port=port, login=LOGIN, password=PASSWORD,
                      fingerprint=key.get_fingerprint("sha256"))
    try:
        async with httpx.AsyncClient(base_url=api, headers=bearer(token), timeout=60) as http:
            return await run_once(settings.model_copy(update={"sftp": sftp}), http)
    finally:
        server.close()
        await server.wait_closed()


def test_zip_with_manifest_over_sftp(api: str, client: tuple[str, Pastell], tmp_path: Path
                                     ) -> None:
    token, pastell = client
    id_e = pastell.entity_of(CITY_A)
    _folders(tmp_path)
    (tmp_path / "in" / "a-corrompu.zip").write_bytes(b"PK\x03\x04 not a zip at all")
    (tmp_path / "in" / "b-courrier.zip").write_bytes(_zip({
        "manifest.xml": MANIFEST.encode(), "courrier.pdf": minimal_pdf("Courrier SFTP"),
        "annexe.pdf": minimal_pdf("Annexe SFTP")}))
    settings = GlaneurSettings(name="sftp", id_e=id_e, type_depot="ZIP", directory="/in",
                               directory_send="/sent", directory_error="/error",
                               manifest_type="xml", action_ok="orientation")
    report = asyncio.run(_glean_over_sftp(tmp_path, settings, api, token))

    assert list(report.refused) == ["a-corrompu.zip"]
    assert "archive ZIP illisible" in report.refused["a-corrompu.zip"]
    assert sorted(p.name for p in (tmp_path / "error").iterdir()) == [
        "a-corrompu.zip", "a-corrompu.zip.erreur.txt"]
    assert "illisible" in (tmp_path / "error" / "a-corrompu.zip.erreur.txt").read_text()
    assert [p.name for p in (tmp_path / "sent").iterdir()] == ["b-courrier.zip"]
    assert not list((tmp_path / "in").iterdir())
    id_d = report.imported["b-courrier.zip"]
    done = pastell.wait_state(id_e, id_d, ("termine",))
    assert done["last_action"]["action"] == "termine", done["last_action"]
    assert done["data"]["libelle"] == "Courrier déposé par SFTP"
    assert done["data"]["annexe"] == ["annexe.pdf"]
    journal = pastell.call("GET", f"/journal?id_e={id_e}&id_d={id_d}", 200)
    [imported] = [r for r in journal if r["action"] == "importation"]
    assert "/in/b-courrier.zip" in imported["message"]
    assert "courrier.pdf" in imported["message"] and "annexe.pdf" in imported["message"]


def test_loose_files_by_pattern_in_a_local_folder(api: str, client: tuple[str, Pastell],
                                                  tmp_path: Path) -> None:
    token, pastell = client
    id_e = pastell.entity_of(CITY_A)
    _folders(tmp_path)
    for n in (1, 2):
        (tmp_path / "in" / f"note-{n}.pdf").write_bytes(minimal_pdf(f"Note {n}"))
        (tmp_path / "in" / f"note-{n}-annexe.pdf").write_bytes(minimal_pdf(f"Annexe {n}"))
    settings = GlaneurSettings(
        name="local", id_e=id_e, type_depot="VRAC", directory=str(tmp_path / "in"),
        directory_send=str(tmp_path / "sent"), directory_error=str(tmp_path / "error"),
        flux_name="ls-document-pdf",
        file_preg_match="document: #^note-([0-9]+)\\.pdf$#\n"
                        "annexe: #^note-$matches[0][1]-annexe\\.pdf$#",
        metadata_static="libelle: Note %document%")

    async def run() -> RunReport:
        async with httpx.AsyncClient(base_url=api, headers=bearer(token), timeout=60) as http:
            return await run_once(settings, http)

    report = asyncio.run(run())
    assert not report.refused and sorted(report.imported) == ["note-1.pdf", "note-2.pdf"]
    assert sorted(p.name for p in (tmp_path / "sent").iterdir()) == [
        "note-1-annexe.pdf", "note-1.pdf", "note-2-annexe.pdf", "note-2.pdf"]
    detail = pastell.call("GET", f"/entite/{id_e}/document/{report.imported['note-2.pdf']}",
                          200)
    assert detail["data"]["libelle"] == "Note note-2.pdf"
    assert detail["data"]["document"] == ["note-2.pdf"]
    assert detail["data"]["annexe"] == ["note-2-annexe.pdf"]
    assert detail["last_action"]["action"] == "modification"  # no action_ok


def test_demat_glaneur_imports_folders(api: str, client: tuple[str, Pastell], demat,
                                       tmp_path: Path) -> None:
    """``demat glaneur`` (FOLDER mode: one sub-folder, one document) from its YAML file;
    a folder missing its main file is refused and the command says so (exit 1)."""
    token, pastell = client
    id_e = pastell.entity_of(CITY_A)
    _folders(tmp_path)
    (tmp_path / "in" / "dossier-1").mkdir()
    (tmp_path / "in" / "dossier-1" / "lettre.pdf").write_bytes(minimal_pdf("Lettre"))
    (tmp_path / "in" / "dossier-2").mkdir()
    (tmp_path / "in" / "dossier-2" / "notes.txt").write_bytes(b"pas de PDF ici")
    config = tmp_path / "glaneurs.yaml"
    config.write_text(yaml.safe_dump({"api": api, "token": token, "glaneurs": [{
        "name": "dossiers", "id_e": id_e, "type_depot": "FOLDER",
        "directory": str(tmp_path / "in"), "directory_send": str(tmp_path / "sent"),
        "directory_error": str(tmp_path / "error"), "flux_name": "ls-document-pdf",
        "file_preg_match": "document: \\.pdf$", "metadata_static": "libelle: %document%",
        "action_ok": "orientation"}]}))
    done = demat("glaneur", "--config", str(config), timeout=120)
    assert done.returncode == 1, done.stderr
    [line] = done.stdout.splitlines()
    assert line.startswith("dossiers: dossier-1 -> ")
    assert "dossier-2 refused" in done.stderr and "formulaire incomplet" in done.stderr
    assert [p.name for p in (tmp_path / "sent").iterdir()] == ["dossier-1"]
    assert sorted(p.name for p in (tmp_path / "error").iterdir()) == [
        "dossier-2", "dossier-2.erreur.txt"]
    reason = (tmp_path / "error" / "dossier-2.erreur.txt").read_text()
    half_made = re.search(r"document (\w{7}) supprimé", reason)
    assert half_made, reason
    pastell.call("GET", f"/entite/{id_e}/document/{half_made[1]}", 404)
    id_d = line.rsplit(" ", 1)[1]
    assert pastell.wait_state(id_e, id_d, ("termine",))["data"]["libelle"] == "lettre.pdf"
