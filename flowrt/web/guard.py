"""Who may use the web view: HTTP basic auth, loopback-only without it, no cross-site writes."""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from flowrt.errors import ConfigurationError

AUTH_VARIABLE = "FLOWRT_WEB_AUTH"
_SAFE_METHODS = ("GET", "HEAD")
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]


def parse_auth(text: str | None) -> list[tuple[str, str]]:
    """`user:password[,user2:password2]` as pairs; none for an unset or empty value."""
    if not text or not text.strip():
        return []
    users = []
    for item in text.split(","):
        user, sep, password = item.strip().partition(":")
        if not sep or not user or not password:
            raise ConfigurationError(
                f"{AUTH_VARIABLE} must be user:password, several separated by commas; "
                f"an entry for user {user or '(empty)'!r} has no user name or no password"
            )
        users.append((user, password))
    return users


def check_bind(host: str, users: list[tuple[str, str]]) -> None:
    """Refuse a host other than a loopback address unless basic auth is configured."""
    if users or _is_loopback(host):
        return
    raise ConfigurationError(
        f"refusing to serve the web view on {host!r} without credentials: anyone who can "
        f"reach it could restore and cancel executions; set {AUTH_VARIABLE}=user:password "
        "(several comma-separated), or bind a loopback address (--host 127.0.0.1)"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Guard:
    """ASGI middleware in front of every route: credentials, then the cross-site rules.

    Writes (any method but GET and HEAD) must carry a JSON body (`Content-Type:
    application/json`, 415 otherwise), which a browser sends cross-site only after a CORS
    preflight, and preflights (OPTIONS) are refused; a request a browser marks cross-site
    (`Sec-Fetch-Site`, or an `Origin` other than the server's) is refused too.
    """

    def __init__(self, app: Asgi, users: list[tuple[str, str]]) -> None:
        self.app = app
        self.users = [(u.encode(), p.encode()) for u, p in users]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.users and not self._authorized(headers.get("authorization", "")):
            await _answer(send, 401, "credentials required (HTTP basic auth)", basic=True)
            return
        method = scope["method"]
        if method == "OPTIONS":
            await _answer(send, 405, "cross-origin requests are not allowed")
            return
        if method not in _SAFE_METHODS:
            refusal = _refuse_write(headers)
            if refusal is not None:
                await _answer(send, *refusal)
                return
        await self.app(scope, receive, send)

    def _authorized(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, sep, password = base64.b64decode(encoded.strip(), validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return False
        found = False
        for known_user, known_password in self.users:  # every pair, whatever matched
            same_user = hmac.compare_digest(user, known_user)
            same_password = hmac.compare_digest(password, known_password)
            found |= bool(sep) and same_user and same_password
        return found


def _refuse_write(headers: dict[str, str]) -> tuple[int, str] | None:
    if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return 403, "cross-site requests may not change executions"
    origin = headers.get("origin")
    if origin is not None and origin.split("://", 1)[-1] != headers.get("host", ""):
        return 403, f"requests from {origin} may not change executions"
    kind = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != "application/json":
        return 415, (
            "send the request body as JSON with Content-Type: application/json "
            f"(got {kind or 'no Content-Type'}); an action without arguments takes {{}}"
        )
    return None


async def _answer(send: Send, status: int, detail: str, basic: bool = False) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if basic:
        headers.append((b"www-authenticate", b'Basic realm="flowrt", charset="UTF-8"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
