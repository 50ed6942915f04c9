"""A glaneur's settings: the incumbent's names (``type_depot``, ``directory``,
``directory_send``, ``directory_error``, ``manifest_type``, ``manifest_filename``,
``flux_name``, ``file_preg_match``, ``metadata_static``, ``action_ok``, ``action_ko``,
``traitement_actif``), where the drop folder is (local or SFTP), and which entity of the
Pastell door receives its documents."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.errors import first_error


class GlaneurError(ValueError):
    """Bad settings; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class SftpServer(BaseModel):
    """An SFTP server: the host key's SHA-256 fingerprint (``SHA256:…``) is required."""

    model_config = ConfigDict(extra="forbid")

    host: str
    port: int = 22
    login: str
    password: str
    fingerprint: str = Field(pattern=r"^SHA256:[A-Za-z0-9+/=]{20,}$")


class GlaneurSettings(BaseModel):
    """One drop folder."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    id_e: str  # the entity (tenant) of the Pastell door the documents belong to
    traitement_actif: bool = True
    type_depot: Literal["ZIP", "FOLDER", "VRAC"] = "ZIP"
    sftp: SftpServer | None = None  # none: a local folder
    directory: str
    directory_send: str
    directory_error: str
    manifest_type: Literal["no", "xml"] = "no"
    manifest_filename: str = "manifest.xml"
    flux_name: str = ""
    file_preg_match: str = ""  # one `field: regex` per line
    metadata_static: str = ""  # one `field: value` per line (%field%, $matches[i][j])
    action_ok: str = ""
    force_action_ok: bool = False
    action_ko: str = "fatal-error"
    max_items: int = Field(default=100, ge=1, le=10_000)  # items per run


class GlaneurFile(BaseModel):
    """The glaneurs of one bus: the Pastell door's URL and the token they call it with."""

    model_config = ConfigDict(extra="forbid")

    api: str = "http://127.0.0.1:8080"
    token: str = Field(min_length=1)
    glaneurs: list[GlaneurSettings]


def load(path: Path) -> GlaneurFile:
    """The settings file (YAML); ``GlaneurError`` naming the bad field."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise GlaneurError(str(path), f"unreadable: {exc}") from None
    try:
        return GlaneurFile.model_validate(raw)
    except ValidationError as exc:
        raise GlaneurError(*first_error(exc, str(path))) from None
