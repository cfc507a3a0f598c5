"""The REST connector: HTTP calls with httpx against a configured base URL."""

from __future__ import annotations

import math
from typing import Any

import httpx

from flowrt.connectors.base import Connector
from flowrt.connectors.masking import mask_url
from flowrt.errors import ConnectorError, HttpStatusError

IDEMPOTENCY_HEADER = "Idempotency-Key"


class RestConnector(Connector):
    """`connect(name, method=, path=, json=, params=, headers=, data=)` returns
    `{'status_code', 'headers', 'json', 'text'}`; a status of 400 or above raises
    `HttpStatusError` unless the call passes `raise_for_status=False`.
    """

    type_name = "rest"
    required = ("base_url",)
    optional = ("headers", "timeout_s")
    call_params = ("method", "path", "json", "params", "headers", "data", "raise_for_status")

    @classmethod
    def check(cls, config: dict[str, Any]) -> str | None:
        """An http(s) base URL with a host; headers of text; a positive finite timeout."""
        base_url = config["base_url"]
        try:
            url = httpx.URL(base_url)
        except (httpx.InvalidURL, TypeError):
            url = None
        if url is None or url.scheme not in ("http", "https") or not url.host:
            return f"its base_url {base_url!r} is not an http(s) URL with a host"
        headers = config.get("headers") or {}
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            return "its headers must map names to text values"
        timeout_s = config.get("timeout_s")
        if timeout_s is not None and not (
            isinstance(timeout_s, (int, float)) and math.isfinite(timeout_s) and timeout_s > 0
        ):
            return f"its timeout_s {timeout_s!r} must be a positive number of seconds"
        return None

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        super().__init__(name, config)
        self._client = httpx.Client(
            base_url=config["base_url"],
            headers=config.get("headers") or {},
            timeout=float(config.get("timeout_s") or 30.0),
        )

    def call(self, params: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        self.check_params(params)
        method = str(params.get("method", "get")).upper()
        headers = {IDEMPOTENCY_HEADER: idempotency_key, **(params.get("headers") or {})}
        try:
            response = self._client.request(
                method,
                params.get("path", ""),
                json=params.get("json"),
                params=params.get("params"),
                data=params.get("data"),
                headers=headers,
            )
        except httpx.HTTPError as exc:
            where = mask_url(f"{self.config['base_url']}{params.get('path', '')}")
            raise ConnectorError(
                self.masked(
                    f"connector {self.name!r}: {method} {where}: {type(exc).__name__}: {exc}"
                )
            ) from None
        if response.status_code >= 400 and params.get("raise_for_status", True):
            where = self.masked(mask_url(str(response.url)))
            raise HttpStatusError(method, where, response.status_code, self.masked(response.text))
        try:
            body = response.json()
        except ValueError:
            body = None
        return {
            "status_code": response.status_code,
            "headers": dict(response.headers),
            "json": body,
            "text": response.text,
        }

    def close(self) -> None:
        self._client.close()
