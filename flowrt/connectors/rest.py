"""The REST connector: HTTP calls with httpx against a configured base URL or a given URL."""

from __future__ import annotations

import math
from typing import Any

import httpx

from flowrt.connectors.base import Connector
from flowrt.connectors.masking import mask_url
from flowrt.errors import ConnectorError, HttpStatusError, InvalidCallError

IDEMPOTENCY_HEADER = "Idempotency-Key"
_FORM = "application/x-www-form-urlencoded"


class RestConnector(Connector):
    """`connect(name, method=, path=, json=, params=, headers=, data=)` returns
    `{'status_code', 'headers', 'json', 'text'}`; a status of 400 or above raises
    `HttpStatusError` unless the call passes `raise_for_status=False`.

    Inline (`this.task('REST', url=...)`), `url=` is the absolute URL of the call; a call on
    a stored connector may give `url=` too, which then replaces its base URL and path.
    `data=` is Cloudomation's: a dict or list is sent as a JSON body (form-encoded when the
    headers say `Content-Type: application/x-www-form-urlencoded`), text or bytes as they are.
    `username=`/`password=` send basic authentication, `timeout=` bounds this call (seconds).
    """

    type_name = "rest"
    required = ("base_url",)
    optional = ("headers", "timeout_s")
    call_params = (
        "method",
        "url",
        "path",
        "json",
        "params",
        "headers",
        "data",
        "username",
        "password",
        "timeout",
        "raise_for_status",
    )

    @classmethod
    def check(cls, config: dict[str, Any]) -> str | None:
        """An http(s) base URL with a host; headers of text; a positive finite timeout."""
        problem = _url_problem(config["base_url"])
        if problem is not None:
            return f"its base_url {problem}"
        headers = config.get("headers") or {}
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            return "its headers must map names to text values"
        timeout_s = config.get("timeout_s")
        if timeout_s is not None and not _is_seconds(timeout_s):
            return f"its timeout_s {timeout_s!r} must be a positive number of seconds"
        return None

    @classmethod
    def split_inline(cls, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """`url=` (absolute) is the call's; its scheme and host make the configuration's base
        URL, so that the URL is checked and its password masked like a stored one's."""
        call = dict(params)
        if "timeout_s" in call and "timeout" not in call:  # flowrt's name for Cloudomation's
            call["timeout"] = call.pop("timeout_s")
        url = call.get("url")
        if url is None:
            raise InvalidCallError(
                "a REST connection needs url= (an absolute http:// or https:// URL)"
            )
        problem = _url_problem(url)
        if problem is not None:
            raise InvalidCallError(f"a REST connection's url {problem}")
        parsed = httpx.URL(url)
        origin = str(parsed.copy_with(path="/", query=None, fragment=None))
        return {"base_url": origin}, call

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        super().__init__(name, config)
        self._client = httpx.Client(
            base_url=config["base_url"],
            headers=config.get("headers") or {},
            timeout=float(config.get("timeout_s") or 30.0),
        )

    def call(self, params: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        self.check_params(params)
        method = params.get("method", "get")
        if not isinstance(method, str) or not method.isalpha():
            raise InvalidCallError(
                f"a REST call's method must be a word like 'get', not {method!r}"
            )
        method = method.upper()
        target = params.get("url") or params.get("path", "")
        if params.get("url") is not None:
            problem = _url_problem(params["url"])
            if problem is not None:
                raise InvalidCallError(self.masked(f"a REST call's url {problem}"))
        headers = {IDEMPOTENCY_HEADER: idempotency_key, **(params.get("headers") or {})}
        try:
            response = self._client.request(
                method,
                target,
                params=params.get("params"),
                headers=headers,
                auth=_auth(params),
                timeout=_timeout(params, self._client.timeout),
                **_body(params, {**self._client.headers, **headers}),
            )
        except httpx.HTTPError as exc:
            where = mask_url(str(params.get("url") or f"{self.config['base_url']}{target}"))
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


def _url_problem(url: object) -> str | None:
    """What keeps `url` from being an absolute http(s) URL with a host, or None."""
    try:
        parsed = httpx.URL(url)  # type: ignore[arg-type]
    except (httpx.InvalidURL, TypeError):
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        return f"{mask_url(str(url))!r} is not an http(s) URL with a host"
    return None


def _is_seconds(value: object) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def _auth(params: dict[str, Any]) -> httpx.BasicAuth | None:
    username, password = params.get("username"), params.get("password")
    if username is None and password is None:
        return None
    return httpx.BasicAuth(str(username or ""), str(password or ""))


def _timeout(params: dict[str, Any], default: httpx.Timeout) -> httpx.Timeout:
    timeout = params.get("timeout")
    if timeout is None:
        return default
    if not _is_seconds(timeout):
        raise InvalidCallError(f"a REST call's timeout {timeout!r} must be a positive number")
    return httpx.Timeout(float(timeout))


def _body(params: dict[str, Any], headers: dict[str, Any]) -> dict[str, Any]:
    """httpx's keyword for the call's body: `json=` as given, `data=` as Cloudomation reads it."""
    if "data" in params and "json" in params:
        raise InvalidCallError("a REST call takes json= or data=, not both")
    if "json" in params:
        return {"json": params["json"]}
    data = params.get("data")
    if data is None:
        return {}
    if isinstance(data, (str, bytes)):
        return {"content": data}
    kind = next((str(v) for k, v in headers.items() if str(k).lower() == "content-type"), "")
    if isinstance(data, dict) and kind.split(";")[0].strip().lower() == _FORM:
        return {"data": data}
    return {"json": data}
