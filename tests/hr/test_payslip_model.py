"""Pay slip metadata: checks, and personal values kept out of messages."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from schemas.payslip import PayslipMetadata, check_nir, nir_key
from schemas.personal import REDACTED, personal_fields, personal_values, scrub
from schemas.siret import check_siret

NIR13 = "1870194035088"
NIR = NIR13 + f"{nir_key(NIR13):02d}"
SIRET = "21690091000011"


def meta(**over) -> dict:
    base = {"matricule": "A0042", "period": "2026-11", "employer_siret": SIRET, "nir": NIR,
            "agent_name": "Jeanne Brossart", "birth_date": "1987-01-27",
            "net_amount": "2000.55", "channels": ["ensap"]}
    return base | over


def test_valid_pay_slip_and_corsican_nir() -> None:
    m = PayslipMetadata.model_validate(meta())
    assert m.nir == NIR and m.period_start.month == 11
    corsica = "2870" + "12A" + "123456"  # born in Corse-du-Sud
    assert check_nir(corsica + f"{nir_key(corsica):02d}")


@pytest.mark.parametrize(("field", "value", "words"), [
    ("nir", NIR13 + "00", "key"),
    ("nir", "9" * 15, "15 characters"),
    ("period", "2026-13", "YYYY-MM"),
    ("employer_siret", "21690091000012", "checksum"),
    ("matricule", "a b", "matricule"),
    ("channels", ["ensap", "ensap"], "twice"),
    ("channels", ["fax"], "channels"),
])
def test_bad_fields_are_named_without_echoing_the_value(field, value, words) -> None:
    with pytest.raises(ValidationError) as exc:
        PayslipMetadata.model_validate(meta(**{field: value}))
    err = exc.value.errors()[0]
    assert err["loc"][0] == field
    assert words in str(err["msg"]) or words == field
    if field == "nir":
        assert NIR13 not in str(exc.value)


def test_channels_need_their_data() -> None:
    with pytest.raises(ValidationError, match="needs the agent's nir"):
        PayslipMetadata.model_validate(meta(nir=None))
    with pytest.raises(ValidationError, match="needs the agent's email"):
        PayslipMetadata.model_validate(meta(channels=["secure-mail"]))
    assert PayslipMetadata.model_validate(meta(nir=None, channels=["agent-space"]))
    with pytest.raises(ValidationError, match="needs the net_amount"):
        PayslipMetadata.model_validate(meta(net_amount=None))
    # only ENSAP's envelope carries the net amount: a pay slip mailed needs none
    mailed = meta(net_amount=None, channels=["secure-mail"], email="j.b@exemple.fr")
    assert PayslipMetadata.model_validate(mailed).net_amount is None


def test_siret_luhn() -> None:
    assert check_siret("216 900 910 00011") == SIRET
    with pytest.raises(ValueError, match="14 digits"):
        check_siret("2169009100001")


def test_personal_values_are_scrubbed_in_every_form() -> None:
    assert {"nir", "agent_name", "birth_date", "net_amount"} <= personal_fields(PayslipMetadata)
    assert "matricule" not in personal_fields(PayslipMetadata)
    secrets = personal_values(PayslipMetadata, meta())
    detail = {"files": [{"name": f"{NIR13}_{SIRET}_BPaie_01112026.pdf"}],
              "error": {"message": "agent Jeanne Brossart born 27011987 paid 200055"},
              "amount": 2000.55, "matricule": "A0042"}
    clean = scrub(detail, secrets)
    text = repr(clean)
    for secret in (NIR13, "Jeanne Brossart", "27011987", "200055", "2000.55"):
        assert secret not in text
    assert clean["matricule"] == "A0042" and REDACTED in clean["files"][0]["name"]


@pytest.mark.parametrize("value", ["M123\n", "M 12", "-M12", "M" * 21, "Ｍ123", ""])
def test_matricule_is_matched_whole(value: str) -> None:
    from schemas.matricule import check_matricule

    with pytest.raises(ValueError, match="matricule"):
        check_matricule(value)
    assert check_matricule("AG-00_12") == "AG-00_12"
