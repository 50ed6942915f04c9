"""``demat sessions list|end`` on the session's stack: an administrator sees people's open
sessions (never their secrets) and ends one, or all of a login's."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest

from bus.runtime import Runtime
from bus.sessions import SessionStore
from bus.settings import Settings

pytestmark = pytest.mark.stack


def test_sessions_are_listed_and_ended_from_the_cli(settings: Settings, demat) -> None:
    sessions = SessionStore(Runtime(settings).store, timedelta(hours=1))
    login = f"agent-{uuid.uuid4().hex[:8]}@ville.fr"  # as a login through the provider
    first, one = sessions.open(login, {"iss": "https://idp"}, "id-token")
    second, _ = sessions.open(login, {}, "id-token")
    listed = demat("sessions", "list", "--login", login, "--json")
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == 2
    assert first not in listed.stdout and "id-token" not in listed.stdout
    ended = demat("sessions", "end", one["ref"])
    assert ended.returncode == 0 and one["ref"] in ended.stdout
    assert sessions.find(first) is None and sessions.find(second) is not None
    assert demat("sessions", "end", "--login", login).returncode == 0
    assert sessions.find(second) is None
    none = demat("sessions", "end", "--login", login)
    assert none.returncode != 0 and "no open session" in none.stderr
