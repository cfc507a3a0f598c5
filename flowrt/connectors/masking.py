"""Connector credentials kept out of every output: passwords in URLs and secret header values."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

MASK = "***"
# Header and query parameter names whose values are credentials (matched as parts of a name).
_SECRET_WORDS = ("auth", "token", "key", "secret", "passw", "pwd", "cookie", "session", "cred")
_URL_FIELDS = ("url", "base_url")


def is_secret_name(name: str) -> bool:
    """True for a header or parameter name that carries a credential (`Authorization`, ...)."""
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def mask_url(url: str) -> str:
    """`url` with its password, and the values of credential query parameters, masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    # Replaced in place: urlunsplit would respell URLs such as sqlite:////abs/path.
    if "@" in parts.netloc:
        userinfo, host = parts.netloc.rsplit("@", 1)
        if ":" in userinfo:
            masked = userinfo.split(":", 1)[0] + ":" + MASK + "@" + host
            url = url.replace(parts.netloc, masked, 1)
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
        try:
            parts = urlsplit(url)
            found += [v for k, v in parse_qsl(parts.query) if is_secret_name(k)]
            if parts.password:
                found.append(parts.password)
        except ValueError:
            found.append(url)
    headers = config.get("headers")
    if isinstance(headers, dict):
        found += [str(v) for k, v in headers.items() if is_secret_name(str(k))]
    spellings = {form for secret in found for form in (secret, unquote(secret), quote(secret))}
    return sorted((s for s in spellings if s), key=len, reverse=True)


def mask_text(text: str, secrets: list[str]) -> str:
    """`text` with every one of `secrets` replaced by the mask."""
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text
