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
_URL_FIELDS = ("url", "base_url")  # and every field whose name ends in `_url`
# Configuration fields whose names look secret ("key") but hold public keys, shown as they are.
_PUBLIC_FIELDS = ("hostkey", "ssh_hostkey")
_KIND_SUFFIXES = ("_method", "_type", "_mode")
# How far into nested parameters credentials are looked for (levels, and items a level).
_MAX_DEPTH, _MAX_SCAN = 4, 64
# How much of a value `scrub` keeps to be shown (a short repr shows less).
_SHOWN_DEPTH, _SHOWN_ITEMS = 3, 8


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
    """A connector's configuration (or a call's parameters) as it may be shown: credentials
    masked, in nested mappings too."""
    return _masked_value(config, "", 0)  # type: ignore[no-any-return]


def _masked_value(value: Any, name: str, depth: int) -> Any:
    if isinstance(value, str):
        if _is_url_name(name):
            return mask_url(value)
        return MASK if _holds_secret(name) else value
    if depth >= _MAX_DEPTH:
        return value
    if isinstance(value, dict):
        return {key: _masked_value(item, str(key), depth + 1) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        shown = [_masked_value(item, name, depth + 1) for item in value]
        return shown if isinstance(value, list) else tuple(shown)
    return value


def scrub(value: Any, secrets: list[str], name: str = "", depth: int = 0) -> Any:
    """A copy of `value` to show: `secrets` masked in every text, secret-named and URL fields
    masked as `mask_config` does. Only its first levels and items are kept (what a short
    repr shows), so that scrubbing a large value costs little."""
    if isinstance(value, str):
        if _is_url_name(name):
            value = mask_url(value)
        elif _holds_secret(name):
            return MASK
        return mask_text(value, secrets)
    if depth >= _SHOWN_DEPTH:
        return value if isinstance(value, (int, float, bool, type(None))) else _ELIDED
    if isinstance(value, dict):
        items = list(value.items())[:_SHOWN_ITEMS]
        return {k: scrub(v, secrets, str(k), depth + 1) for k, v in items}
    if isinstance(value, (list, tuple)):
        shown = [scrub(item, secrets, name, depth + 1) for item in list(value)[:_SHOWN_ITEMS]]
        shown += [_ELIDED] * (len(value) > _SHOWN_ITEMS)
        return shown if isinstance(value, list) else tuple(shown)
    return value


class _Elided:
    """Stands for what `scrub` left out."""

    def __repr__(self) -> str:
        return "…"


_ELIDED = _Elided()


def secrets_of(config: dict[str, Any]) -> list[str]:
    """Every credential in a connector's configuration or a call's parameters, in the
    spellings a message may use: URL passwords, values of secret-named fields and headers
    (`password`, `token`, `Authorization`, `api_key`, ...), in nested mappings too."""
    found: list[str] = []
    _collect(config, "", 0, found)
    spellings = {form for secret in found for form in (secret, unquote(secret), quote(secret))}
    return sorted((s for s in spellings if s), key=len, reverse=True)


def _collect(value: Any, name: str, depth: int, found: list[str]) -> None:
    if isinstance(value, str):
        if _is_url_name(name):
            found.extend(_url_secrets(value))
        elif _holds_secret(name):
            found.extend(_credentials_in(value))
        return
    if depth >= _MAX_DEPTH:
        return
    if isinstance(value, dict):
        for key, item in list(value.items())[:_MAX_SCAN]:
            _collect(item, str(key), depth + 1, found)
    elif isinstance(value, (list, tuple)):
        for item in list(value)[:_MAX_SCAN]:
            _collect(item, name, depth + 1, found)


def _is_url_name(name: str) -> bool:
    lowered = name.lower()
    return lowered in _URL_FIELDS or lowered.endswith("_url")


def _holds_secret(name: str) -> bool:
    # `authentication_method='basic'` or `token_type='bearer'` name a kind, not a credential.
    lowered = name.lower()
    return (
        is_secret_name(name)
        and not lowered.endswith(_KIND_SUFFIXES)
        and lowered not in _PUBLIC_FIELDS
    )


def _url_secrets(url: str) -> list[str]:
    found: list[str] = []
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
    return found


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


# A secret this short is masked only where it stands alone: masking every "u" of a message
# for a user name "u" would garble it, and show where the secret's letters are not.
_SHORT_SECRET = 4


def mask_text(text: str, secrets: list[str]) -> str:
    """`text` with every one of `secrets` replaced by the mask (a secret of fewer than four
    characters only where no letter or digit touches it)."""
    for secret in secrets:
        if not secret:
            continue
        if len(secret) < _SHORT_SECRET:
            text = re.sub(rf"(?<![\w]){re.escape(secret)}(?![\w])", MASK, text)
        else:
            text = text.replace(secret, MASK)
    return text
