"""What every Pastell route shares: the incumbent's error body and codes, its pretty
JSON, its parameters (query string merged with urlencoded or multipart bodies, PHP
``name[i]`` arrays, PATCH bodies parsed as urlencoded, JSON bodies ignored), and its
authentication (Bearer, or Basic with a login and one of its API tokens)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import parse_qsl

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.datastructures import UploadFile

from bus.api.auth import bearer_caller, bus_of, too_many
from bus.identity import Identity
from bus.intake import SubmissionError

REALM = 'Basic realm="API Pastell"'
_ARRAY = re.compile(r"(?P<name>[^\[\]]+)\[(?P<index>[^\]]*)\]")


class PastellError(Exception):
    """An answer of the incumbent's error shape: ``{"status":"error","error-message":…}``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None
                 ) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers

    def response(self) -> Response:
        return pastell_json({"status": "error", "error-message": self.message}, self.status,
                            self.headers)


def not_permitted(action: str, why: str) -> PastellError:
    """400 of an action whose rule fails (the incumbent's message, its double space too)."""
    return PastellError(400, f"L'action « {action} »  n'est pas permise : {why}")


def pastell_json(body: Any, status: int = 200, headers: dict[str, str] | None = None,
                 pretty: bool = True) -> Response:
    """JSON as the incumbent prints it: pretty (v2), non-ASCII escaped as ``\\u00e9``."""
    return Response(json.dumps(body, indent=4 if pretty else None, ensure_ascii=True),
                    status_code=status,
                    media_type="application/json; charset=utf-8", headers=headers)


class PastellRoute(APIRoute):
    """A route whose every refusal answers in the incumbent's error shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except PastellError as exc:
                return exc.response()
            except SubmissionError as exc:
                return PastellError(400, f"{exc.field}: {exc.message}").response()
            except RequestValidationError as exc:
                first = exc.errors()[0]
                return PastellError(400, f"{first.get('loc')}: {first.get('msg')}").response()
            except HTTPException as exc:
                detail = exc.detail["message"] if isinstance(exc.detail, dict) else exc.detail
                return PastellError(exc.status_code, str(detail), exc.headers).response()

        return guarded


class Params:
    """The request's parameters as PHP reads them: names to values (text or uploads)."""

    def __init__(self, items: list[tuple[str, Any]], raw: dict[str, bytes] | None = None
                 ) -> None:
        self.items = items
        self.raw = raw or {}  # urlencoded values as bytes (a file sent as a plain value)

    def get(self, name: str, default: str = "") -> str:
        for key, value in self.items:
            if key == name and isinstance(value, str):
                return value
        return default

    def upload(self, name: str) -> UploadFile | None:
        for key, value in self.items:
            if key == name and not isinstance(value, str):
                return value
        return None

    def array(self, name: str) -> list[str]:
        """``name[]=a&name[]=b`` or ``name[0]=a&name[1]=b``, in index order."""
        found: list[tuple[int, int, str]] = []
        for order, (key, value) in enumerate(self.items):
            match = _ARRAY.fullmatch(key)
            if match and match["name"] == name and isinstance(value, str):
                index = int(match["index"]) if match["index"].isdigit() else order
                found.append((index, order, value))
        return [value for _, _, value in sorted(found)]

    def fields(self) -> list[tuple[str, str]]:
        """Plain (not array, not upload) text parameters."""
        return [(k, v) for k, v in self.items if isinstance(v, str) and "[" not in k]


async def read_params(request: Request, encoding: str = "utf-8") -> Params:
    """Query string plus body: urlencoded (always so for PATCH) or multipart; a JSON body
    is ignored, as the incumbent ignores it. ``encoding``: of urlencoded bodies (the v1
    scripts sent ISO-8859-1)."""
    items: list[tuple[str, Any]] = list(request.query_params.multi_items())
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        form = await request.form()
        items += list(form.multi_items())
    elif kind == "application/x-www-form-urlencoded" or (
            request.method == "PATCH" and kind != "application/json"):
        pairs = parse_qsl((await request.body()).decode("latin-1"), keep_blank_values=True,
                          encoding="latin-1")
        raw = {k: v.encode("latin-1") for k, v in pairs}
        items += [(k, _text(v.encode("latin-1"), encoding)) for k, v in pairs]
        return Params(items, raw)
    return Params(items)


def _text(value: bytes, encoding: str) -> str:
    try:
        return value.decode(encoding)
    except UnicodeDecodeError:
        return value.decode("latin-1")


async def pastell_caller(request: Request) -> Identity:
    """The caller of a Pastell route: ``Authorization: Bearer <token>``, or Basic with a
    login and one of that login's API tokens as password; 401 as the incumbent says it."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    login = None
    if scheme.lower() == "basic":
        try:
            login, _, value = base64.b64decode(value.strip(), validate=True).decode(
            ).partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise PastellError(401, "Accès interdit", {"WWW-Authenticate": REALM}) from None
    elif scheme.lower() != "bearer" or not value.strip():
        raise PastellError(401, "Accès interdit", {"WWW-Authenticate": REALM})
    try:
        who = await bearer_caller(request, value.strip())
    except HTTPException as exc:
        if exc.status_code == 429:
            raise PastellError(429, "Trop de tentatives de connexion",
                               {"Retry-after": "60"}) from None
        raise PastellError(401, "Accès interdit", {"WWW-Authenticate": REALM}) from None
    if login is not None and login != who.login:
        raise PastellError(401, "Accès interdit", {"WWW-Authenticate": REALM})
    request.state.caller = who.actor
    if wait := bus_of(request).callers.take(who.rate_key):
        exc = too_many(wait, f"requests of {who.rate_key}")
        raise PastellError(429, str(exc.detail["message"]), {"Retry-after": "60"})
    return who
