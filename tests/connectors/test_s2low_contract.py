"""S²LOW's contract as its scripts define it (connectors/README.md): the simulator refuses what
S²LOW refuses, the requests our client used before get the real refusal, and the client
reads the real answers (duplicate PES, off-schema acquits, archiving statuses...)."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import httpx
import pytest

from connectors.errors import BusinessRefusal, PermanentError
from connectors.s2low import actes as A
from connectors.s2low.acquit import read_acquit
from connectors.s2low.client import ActesStatus, S2lowClient
from connectors.s2low.helios import WITH_ACQUIT, HeliosClient, HeliosStatus
from connectors.s2low.replies import RawReply, read_reply
from connectors.s2low.simulator import S2lowSimulator
from connectors.s2low.transport import posted_name
from schemas.acte import ActeMetadata, TenantActesSettings
from workers.finance.demo_pes import demo_pes

PDF = b"%PDF-1.4\n% deliberation\n%%EOF\n"
AUTH = ("mairie", "secret")


def _meta(number: str) -> ActeMetadata:
    return ActeMetadata(nature=1, number=number, decision_date=date(2025, 9, 25),
                        subject="Budget été", classification="7.1",
                        classification_date=date(2025, 1, 1), annexes=[])


@pytest.fixture()
def sim() -> S2lowSimulator:
    simulator = S2lowSimulator(users={"mairie": "secret", "arch": "pw"}, archivists={"arch"},
                               scenarios={"ARCH1": "archive", "ENV1": "envelope"})
    simulator.start()
    yield simulator
    simulator.stop()


# ---------------------------------------------------------------- "before" requests


def test_before_the_envelope_submission_is_refused_as_deprecated(sim: S2lowSimulator) -> None:
    archive = A.build_acte_archive(sim.authority, _meta("OLD1"), PDF, [])
    resp = httpx.post(f"{sim.base_url}/modules/actes/actes_transac_submit.php", auth=AUTH,
                      data={"api": "1"},
                      files={"enveloppe": (archive.name, archive.data, "application/x-gzip")})
    assert resp.status_code == 200
    assert resp.content.decode("latin-1") == (
        "KO\nCette fonctionnalité est déprécié. Vous devez désormais utiliser : "
        "&#039;/modules/actes/actes_transac_create.php&#039; pour créer un acte.\n")


async def test_before_list_actes_rows_lack_the_fields_the_old_client_read(sim: S2lowSimulator
                                                                    ) -> None:
    client = S2lowClient(sim.base_url, login="mairie", password="secret")
    tid = await client.create_acte_transaction(_meta("LIST1"), PDF)
    resp = httpx.get(f"{sim.base_url}/modules/actes/api/list_actes.php", auth=AUTH,
                     params={"status_id": 4})
    (row,) = resp.json()["transactions"]
    assert set(row) == {"id", "subject", "number", "date", "nature_descr", "classification",
                        "type"}  # no unique_id, decision_date nor last_status_id
    assert row["id"] == tid and row["date"] == "2025-09-25"
    assert row["subject"] == "Budget été"  # posted in ISO-8859-1, as S²LOW reads it
    found = await client.find_transaction("LIST1", date(2025, 9, 25))
    assert found is not None and found.id == tid


def test_before_list_pes_aller_refuses_a_non_archivist(sim: S2lowSimulator) -> None:
    resp = httpx.get(f"{sim.base_url}/modules/helios/api/list_pes_aller.php", auth=AUTH,
                     params={"status_id": 1})
    assert resp.status_code == 400
    assert resp.json() == {"error": "L'utilisateur n'est pas archiviste"}
    ok = httpx.get(f"{sim.base_url}/modules/helios/api/list_pes_aller.php", auth=("arch", "pw"),
                   params={"status_id": 1})
    assert ok.status_code == 200 and ok.json()["transactions"] == []


async def test_before_get_tampon_still_redirects_but_files_list_is_the_way(sim: S2lowSimulator
                                                                     ) -> None:
    client = S2lowClient(sim.base_url, login="mairie", password="secret")
    tid = await client.create_acte_transaction(_meta("TAMP1"), PDF)
    old = httpx.get(f"{sim.base_url}/modules/actes/actes_transac_get_tampon.php", auth=AUTH,
                    params={"transaction": tid})
    assert old.status_code == 302 and "tampon=true" in old.headers["location"]
    files = await client.list_files(tid)
    assert files[0].name.endswith("_0.xml") and files[1].mimetype == "application/pdf"
    stamped = await client.get_stamped(tid)
    assert stamped.startswith(b"%PDF") and b"Tampon S2LOW" in stamped


# ---------------------------------------------------------------- ACTES


async def test_create_answers_as_the_script(sim: S2lowSimulator) -> None:
    url = f"{sim.base_url}/modules/actes/actes_transac_create.php"
    form = {"api": "1", "nature_code": "1", "number": "bad number", "decision_date": "2025-01-01",
            "subject": "x", "type_acte": "99_DE", "classif1": "7"}
    pdf = {"acte_pdf_file": ("a.pdf", PDF, "application/pdf")}
    assert httpx.post(url, auth=AUTH, data=form, files=pdf).text == \
        "KO\nLe numéro n&#039;est pas correct\n"
    no_api = httpx.post(url, auth=AUTH, data={**form, "api": ""}, files=pdf)
    assert no_api.status_code == 302  # the web form's answer: a redirect
    no_file = httpx.post(url, auth=AUTH, data={**form, "number": "N1"})
    assert no_file.text == "KO\nAucun fichier acte n&#039;a été posté \n"
    unauth = httpx.post(url, data=form, files=pdf)
    assert unauth.content.decode("latin-1") == "KO\nÉchec de l'authentification"
    client = S2lowClient(sim.base_url, login="mairie", password="secret")
    with pytest.raises(PermanentError, match="même numéro interne"):
        for _ in range(2):
            await client.create_acte_transaction(_meta("TWICE1"), PDF)


async def test_en_attente_stays_at_17(sim: S2lowSimulator) -> None:
    client = S2lowClient(sim.base_url, login="mairie", password="secret")
    tid = await client.create_acte_transaction(_meta("WAIT1"), PDF, en_attente=True)
    assert (await client.get_status(tid)).status == ActesStatus.WAITING_POST == 17


async def test_archived_acte_is_acknowledged_through_get_aracte(sim: S2lowSimulator) -> None:
    client = S2lowClient(sim.base_url, login="mairie", password="secret")
    tid = await client.create_acte_transaction(_meta("ARCH1"), PDF)
    status = await client.get_status(tid)
    assert status.status == ActesStatus.SAE_ARCHIVED and status.flux is None
    ar, flux = await client.get_aractes(tid)
    assert ar.id_acte.endswith("-ARCH1-DE") and flux.startswith(b"<?xml")


async def test_anomalie_enveloppe_is_read_and_refused(sim: S2lowSimulator) -> None:
    client = S2lowClient(sim.base_url, login="mairie", password="secret")
    tid = await client.create_acte_transaction(_meta("ENV1"), PDF)
    status = await client.get_status(tid)
    assert status.status == -1 and status.reply.kind == "AnomalieEnveloppe"
    with pytest.raises(BusinessRefusal, match="PREF-VERIF-02"):
        status.raise_for_refusal()


def test_off_schema_anomaly_is_read_tolerantly() -> None:
    xml = (b'<?xml version="1.0" encoding="ISO-8859-1"?><actes:AnomalieEnveloppe '
           b'xmlns:actes="http://www.interieur.gouv.fr/ACTES#v1.1-20040216">'
           b"<actes:Nature>5</actes:Nature><actes:Detail>SIREN inconnu</actes:Detail>"
           b"<actes:Inattendu/></actes:AnomalieEnveloppe>")
    reply = read_reply(xml)
    assert isinstance(reply, RawReply | A.AnomalieEnveloppe)
    assert reply.nature == "5" and reply.detail == "SIREN inconnu"


# ---------------------------------------------------------------- HELIOS


def _pes(tmp_path: Path, name: str) -> tuple[Path, str]:
    path = tmp_path / f"{name}.xml"
    path.write_bytes(demo_pes("21690091000011", name))
    return path, hashlib.sha1(path.read_bytes()).hexdigest()


async def test_duplicate_pes_is_already_sent_and_recovered_by_an_archivist(
        sim: S2lowSimulator, tmp_path: Path) -> None:
    path, sha1 = _pes(tmp_path, "PESDUP1")
    answer = httpx.post(f"{sim.base_url}/modules/helios/api/helios_importer_fichier.php",
                        auth=("arch", "pw"), files={"enveloppe": (path.name, path.read_bytes())})
    assert "<resultat>OK</resultat>" in answer.text
    again = httpx.post(f"{sim.base_url}/modules/helios/api/helios_importer_fichier.php",
                       auth=("arch", "pw"), files={"enveloppe": ("other.xml", path.read_bytes())})
    assert "<id></id>" in again.text and "<resultat>KO</resultat>" in again.text
    assert "doublon détecté. Ce fichier a déjà été posté." in again.text
    tid = int(answer.text.split("<id>")[1].split("<")[0])
    archivist = HeliosClient(S2lowClient(sim.base_url, login="arch", password="pw"))
    sent = await archivist.submit_pes(path.name, path, sha1)
    assert sent.duplicate and sent.transaction_id == tid and not sent.created
    mairie = HeliosClient(S2lowClient(sim.base_url, login="mairie", password="secret"))
    with pytest.raises(PermanentError, match="archiviste"):  # cannot list: not archivist
        await mairie.submit_pes(path.name, path, sha1)
    assert (await mairie.submit_pes(path.name, path, sha1, known_id=tid)).transaction_id == tid


async def test_helios_statuses_and_refused_acquit_off_schema(sim: S2lowSimulator,
                                                       tmp_path: Path) -> None:
    helios = HeliosClient(S2lowClient(sim.base_url, login="mairie", password="secret"))
    info_path, _ = _pes(tmp_path, "PESINFO1")
    refus_path, _ = _pes(tmp_path, "PESREFUS1")
    info = await helios.post_pes(info_path.name, info_path.read_bytes())
    refus = await helios.post_pes(refus_path.name, refus_path.read_bytes())
    assert (await helios.get_status(info)).status == HeliosStatus.INFORMATION_DISPONIBLE
    assert HeliosStatus.INFORMATION_DISPONIBLE in WITH_ACQUIT
    status = await helios.get_status(refus)
    assert status.status == HeliosStatus.REFUSE and status.message == "Refusé par le comptable"
    acquit = read_acquit(await helios.get_acquit(refus))
    assert not acquit.accepted and "ERREUR_AUTRE: Bordereau rejeté" in acquit.reason
    assert acquit.schema_error and "CodCol" in acquit.schema_error
    with pytest.raises(PermanentError, match="redirected"):  # no acquit: S²LOW redirects
        await helios.get_acquit(999)
    with pytest.raises(PermanentError, match="Numéro de transaction invalide"):
        await helios.get_status(999)


def test_s2low_fixture_acquit_breaking_its_schema_is_read() -> None:
    # libriciel/s2low test/PHPUnit/helios/fixtures/pes_acquit_not_valid_without_cod_col.xml
    # (its structure, written here): no CodCol, unknown TypFic, one error element
    xml = (b'<?xml version="1.0" encoding="ISO-8859-1"?><n:PES_ACQUIT xmlns:n="http://www.'
           b'minefi.gouv.fr/cp/helios/pes_v2/Rev0/retour/v2"><Enveloppe><Parametres>'
           b'<Version V="2"/><TypFic V="UNKNOWN_TYPE"/><NomFic V="pescg29"/></Parametres>'
           b'</Enveloppe><EnTetePES><DteStr V="2018-10-16"/><IdPost V="086016"/>'
           b'<IdColl V="12345"/><CodBud V="01"/></EnTetePES><ACQUIT><EnTeteAcquit>'
           b'<IdVer V="2"/></EnTeteAcquit><ElementACQUIT><DomaineAck V="0"/><EtatAck V="0"/>'
           b'<Erreur><NumAnoAck V="ERREUR_AUTRE"/><LibelleAnoAck V="Erreur de validation XSD '
           b'en boite 1"/></Erreur></ElementACQUIT></ACQUIT></n:PES_ACQUIT>')
    acquit = read_acquit(xml)
    assert acquit.file_name == "pescg29" and not acquit.accepted
    assert acquit.reason == "ERREUR_AUTRE: Erreur de validation XSD en boite 1"
    assert acquit.schema_error


def test_unauthenticated_helios_status_answers_its_xml(sim: S2lowSimulator) -> None:
    resp = httpx.get(f"{sim.base_url}/modules/helios/api/helios_transac_get_status.php",
                     params={"transaction": 1})
    assert "<resultat>KO</resultat>" in resp.text and "authentification" in resp.text
    download = httpx.get(f"{sim.base_url}/modules/helios/helios_download_acquit.php",
                         params={"id": 1})
    assert download.status_code == 302


async def test_acte_waiting_at_17_is_posted_by_confirm(sim: S2lowSimulator) -> None:
    client = S2lowClient(sim.base_url, login="mairie", password="secret")
    tid = await client.create_acte_transaction(_meta("CONF1"), PDF, en_attente=True)
    await client.confirm_post(tid)
    assert (await client.get_status(tid)).status == ActesStatus.ACK_RECEIVED
    with pytest.raises(PermanentError, match="En attente d"):  # not at 17 any more
        await client.confirm_post(tid)


async def test_pes_retour_read_mark_answers_transaction(sim: S2lowSimulator,
                                                        tmp_path: Path) -> None:
    helios = HeliosClient(S2lowClient(sim.base_url, login="mairie", password="secret"))
    path, _ = _pes(tmp_path, "PESRET1")
    await helios.post_pes(path.name, path.read_bytes())
    (ref,) = await helios.list_retours()
    await helios.mark_retour_read(ref.id)
    assert await helios.list_retours() == []
    resp = httpx.get(f"{sim.base_url}/modules/helios/api/helios_change_status.php",
                     auth=AUTH, params={"id": 999})
    assert "<idRetour>999</idRetour>" in resp.text and "<resultat>KO</resultat>" in resp.text
    with pytest.raises(PermanentError, match="retour id n'est pas correcte"):
        await helios.get_retour(999)


async def test_s2low_analysis_after_the_import(sim: S2lowSimulator, tmp_path: Path) -> None:
    helios = HeliosClient(S2lowClient(sim.base_url, login="mairie", password="secret"))
    path, _ = _pes(tmp_path, "PESNOM1")
    first = await helios.post_pes(path.name, path.read_bytes())
    utf8 = path.read_bytes().replace(b"ISO-8859-1", b"UTF-8")
    same_name = path.read_bytes().replace(b"<DteStr", b"<!-- autre -->\n<DteStr", 1)
    not_latin1 = await helios.post_pes("utf8.xml", utf8)
    renamed = await helios.post_pes("copy.xml", same_name)  # other SHA-1, same NomFic
    assert (await helios.get_status(first)).status == HeliosStatus.ACQUITTE
    bad = await helios.get_status(not_latin1)
    assert bad.status == -1
    assert bad.message == f"Transaction {not_latin1} : ce fichier n'est pas encodé en ISO-8859-1"
    again = await helios.get_status(renamed)
    assert again.status == -1 and again.message.endswith("ce fichier existe déjà sur la plateforme")


def test_posted_names_survive_s2low_utf8_encode() -> None:
    assert posted_name("délib n°1.pdf") == "d_lib n_1.pdf"
    assert posted_name("PES-été.xml", dash=True) == "PES-_t_.xml"


async def test_another_authority_is_refused(tmp_path: Path) -> None:
    other = TenantActesSettings(siren="200000016", departement="035", arrondissement=1,
                                nature_autorite="32", return_emails=["actes@voisine.fr"])
    simulator = S2lowSimulator(users={"mairie": "secret", "voisine": "pw"},
                               authorities={"voisine": other})
    simulator.start()
    try:
        mine = S2lowClient(simulator.base_url, login="mairie", password="secret")
        tid = await mine.create_acte_transaction(_meta("MINE1"), PDF)
        theirs = S2lowClient(simulator.base_url, login="voisine", password="pw")
        with pytest.raises(PermanentError, match="Accès refusé"):
            await theirs.get_status(tid)
        with pytest.raises(PermanentError, match="Accès refusé"):
            await theirs.list_files(tid)
    finally:
        simulator.stop()
