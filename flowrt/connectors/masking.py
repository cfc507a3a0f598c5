"""Connector credentials kept out of every output: passwords in URLs and secret header values."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

MASK = "***"
# scheme://user:password@ — the password up to the `@`, as SQLAlchemy's URL parser reads it.
_USERINFO = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@?#]*:)(?P<password>[^@]*)@")
_MIN_TOKEN_CHARS = 8  # parts of a secret header's value masked on their own from this length
# Header and query parameter names whose values are credentials (matched as parts of a name).
_SECRET_WORDS = ("auth", "token", "key", "secret", "passw", "pwd", "cookie", "session", "cred")
_URL_FIELDS = ("url", "base_url", "repository_url")
# Configuration fields whose names look secret ("key") but hold public keys, shown as they are.
_PUBLIC_FIELDS = ("hostkey", "ssh_hostkey")


def is_secret_name(name: str) -> bool:
    """True for a header or parameter name that carries a credential (`Authorization`, ...)."""
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def mask_url(url: str) -> str:
    """`url` with its password, and the values of credential query parameters, masked."""
    # The password as SQLAlchemy reads it: everything up to the `@` (it may hold / # ?).
    url = _USERINFO.sub(lambda m: m["head"] + MASK + "@", url, count=1)
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    # Replaced in place: urlunsplit would respell URLs such as sqlite:////abs/path.
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        query = "&".join(f"{quote(k)}={MASK if is_secret_name(k) else quote(v)}" for k, v in pairs)
        if any(is_secret_name(k) for k, _ in pairs):
            url = url.replace("?" + parts.query, "?" + query, 1)
    return url


def mask_config(config: dict[str, Any]) -> dict[str, Any]:
    """A connector's configuration as it may be shown: credentials masked."""
    shown = dict(config)
    for field in _URL_FIELDS:
        if isinstance(shown.get(field), str):
            shown[field] = mask_url(shown[field])
    for field in _secret_fields(shown):
        shown[field] = MASK
    headers = shown.get("headers")
    if isinstance(headers, dict):
        shown["headers"] = {
            name: MASK if is_secret_name(str(name)) else value for name, value in headers.items()
        }
    return shown


def secrets_of(config: dict[str, Any]) -> list[str]:
    """Every credential in a connector's configuration, in the spellings a message may use."""
    found: list[str] = []
    for field in _URL_FIELDS:
        url = config.get(field)
        if not isinstance(url, str):
            continue
        userinfo = _USERINFO.match(url)
        if userinfo is not None:
            found.append(userinfo["password"])
        try:
            parts = urlsplit(url)
            found += [v for k, v in parse_qsl(parts.query) if is_secret_name(k)]
            if parts.password:
                found.append(parts.password)
        except ValueError:
            found.append(url)
    found += [config[field] for field in _secret_fields(config)]
    headers = config.get("headers")
    if isinstance(headers, dict):
        for name, value in headers.items():
            if is_secret_name(str(name)):
                found += _credentials_in(str(value))
    spellings = {form for secret in found for form in (secret, unquote(secret), quote(secret))}
    return sorted((s for s in spellings if s), key=len, reverse=True)


def _secret_fields(config: dict[str, Any]) -> list[str]:
    # Credentials given as fields of their own: an SSH password or private key, a git token.
    return [
        field
        for field, value in config.items()
        if isinstance(value, str)
        and value
        and is_secret_name(field)
        and field not in _PUBLIC_FIELDS + _URL_FIELDS
    ]


def _credentials_in(value: str) -> list[str]:
    # A header value and its parts a server may echo alone: the token after `Bearer`, and
    # the user:password (and password) of `Basic` credentials.
    found = [value] + [part for part in value.split() if len(part) >= _MIN_TOKEN_CHARS]
    scheme, _, credentials = value.partition(" ")
    if scheme.lower() == "basic" and credentials:
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return found
        found += [decoded, decoded.partition(":")[2]]
    return [secret for secret in found if secret]


def mask_text(text: str, secrets: list[str]) -> str:
    """`text` with every one of `secrets` replaced by the mask."""
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text
