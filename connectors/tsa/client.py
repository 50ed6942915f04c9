"""RFC 3161 time-stamping over HTTP (RFC 3161 section 3.4).

``POST`` a DER ``TimeStampReq`` as ``application/timestamp-query``; the TSA
answers a DER ``TimeStampResp`` as ``application/timestamp-reply``. The client
checks the answer (status, imprint, nonce, signature and chain when a trust
anchor is given) before returning it: what it returns can be stored as a
``.tsr`` file and verified later with ``openssl ts -verify``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from connectors.errors import PermanentError
from connectors.http import call, raise_for_status, resolve_url
from connectors.tsa.token import Stamp, TokenError, build_request, verify_response

PARTNER = "tsa"
QUERY, REPLY = "application/timestamp-query", "application/timestamp-reply"


class TsaClient:
    """Get RFC 3161 time-stamp tokens from one TSA."""

    def __init__(self, url: str, *, ca_pem: bytes, username: str | None = None,
                 password: str | None = None, timeout: float = 10.0) -> None:
        auth = httpx.BasicAuth(username, password or "") if username else None
        self.url = url
        self.ca_pem = ca_pem
        self.http = httpx.AsyncClient(auth=auth, timeout=timeout)

    @classmethod
    def from_options(cls, options: dict[str, Any], *, var_dir: Path) -> TsaClient:
        ca_file = Path(options.get("ca_file") or var_dir / "tsa" / "ca.pem")
        return cls(resolve_url(options["url"], var_dir), ca_pem=ca_file.read_bytes(),
                   username=options.get("username"), password=options.get("password"),
                   timeout=float(options.get("timeout", 10)))

    async def timestamp(self, data: bytes) -> tuple[bytes, Stamp]:
        """A verified ``TimeStampResp`` (DER) over SHA-256 of ``data``, and what it says."""
        query, nonce = build_request(data)

        async def post() -> httpx.Response:
            return raise_for_status(await self.http.post(
                self.url, content=query, headers={"Content-Type": QUERY}), PARTNER)

        resp = await call(PARTNER, post)
        kind = resp.headers.get("content-type", "").split(";")[0].strip()
        if kind != REPLY:
            raise PermanentError(f"tsa: answer is {kind or 'untyped'}, not {REPLY}",
                                 partner=PARTNER, status=resp.status_code)
        try:
            return resp.content, verify_response(resp.content, data, self.ca_pem, nonce=nonce)
        except TokenError as exc:
            raise PermanentError(f"tsa: {exc}", partner=PARTNER) from exc

    async def aclose(self) -> None:
        await self.http.aclose()
