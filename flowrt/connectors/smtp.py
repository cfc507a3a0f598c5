"""The SMTP connector: sends a mail with smtplib, over STARTTLS, implicit TLS or in clear."""

from __future__ import annotations

import math
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from flowrt.connectors.base import Connector
from flowrt.errors import ConnectorError, InvalidCallError

_ADDRESS_PARAMS = ("to", "cc", "bcc")


class SmtpConnector(Connector):
    """`connect(name, to=, subject=, text=, html=, cc=, bcc=, reply_to=, from=)` sends one
    mail and returns `{'message_id', 'recipients', 'refused'}`.

    The names are Cloudomation's: `smtp_host`, `smtp_port`, `login`, `password`, `use_tls`
    (STARTTLS, on by default), and flowrt's `use_ssl` (implicit TLS, as on port 465). The
    Message-ID is made from the call's idempotency key, so a mail sent again after a crash
    carries the same id (receivers can drop the repeat); a restore sends a new one.
    """

    type_name = "smtp"
    required = ("smtp_host",)
    optional = ("smtp_port", "login", "password", "use_tls", "use_ssl", "timeout_s", "from")
    call_params = ("from", "to", "cc", "bcc", "reply_to", "subject", "text", "html")

    @classmethod
    def check(cls, config: dict[str, Any]) -> str | None:
        """A host name, a port from 1 to 65535, booleans for the TLS switches, a login for a
        password, a positive timeout."""
        host, port = config["smtp_host"], config.get("smtp_port")
        if not isinstance(host, str) or not host.strip() or any(c.isspace() for c in host):
            return f"its smtp_host {host!r} must be a host name"
        if port is not None and not (
            isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536
        ):
            return f"its smtp_port {port!r} must be a port number from 1 to 65535"
        for switch in ("use_tls", "use_ssl"):
            if not isinstance(config.get(switch, False), bool):
                return f"its {switch} must be True or False, not {config[switch]!r}"
        for field in ("login", "password", "from"):
            if config.get(field) is not None and not isinstance(config[field], str):
                return f"its {field} must be text, not {type(config[field]).__name__}"
        if config.get("password") and not config.get("login"):
            return "it has a password but no login= to go with it"
        timeout_s = config.get("timeout_s")
        if timeout_s is not None and not (
            isinstance(timeout_s, (int, float)) and math.isfinite(timeout_s) and timeout_s > 0
        ):
            return f"its timeout_s {timeout_s!r} must be a positive number of seconds"
        return None

    @property
    def _use_ssl(self) -> bool:
        return bool(self.config.get("use_ssl", False))

    @property
    def _use_tls(self) -> bool:
        return bool(self.config.get("use_tls", True)) and not self._use_ssl

    @property
    def _where(self) -> str:
        default = 465 if self._use_ssl else 587 if self._use_tls else 25
        return f"{self.config['smtp_host']}:{self.config.get('smtp_port') or default}"

    def call(self, params: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        self.check_params(params)
        message, recipients = self._message(params, idempotency_key)
        host, _, port = self._where.rpartition(":")
        timeout_s = float(self.config.get("timeout_s") or 30.0)
        try:
            if self._use_ssl:
                server: smtplib.SMTP = smtplib.SMTP_SSL(
                    host, int(port), timeout=timeout_s, context=ssl.create_default_context()
                )
            else:
                server = smtplib.SMTP(host, int(port), timeout=timeout_s)
            with server:
                if self._use_tls:
                    server.starttls(context=ssl.create_default_context())
                if self.config.get("login"):
                    server.login(self.config["login"], self.config.get("password") or "")
                refused = server.send_message(message, to_addrs=recipients)
        except smtplib.SMTPException as error:
            raise ConnectorError(self.masked(self._explain(error))) from None
        except (OSError, ssl.SSLError) as error:
            raise ConnectorError(
                self.masked(
                    f"connector {self.name!r}: cannot reach the SMTP server {self._where}: "
                    f"{type(error).__name__}: {error}"
                )
            ) from None
        return {
            "message_id": message["Message-ID"],
            "recipients": recipients,
            "refused": {
                address: [code, reply.decode(errors="replace")]
                for address, (code, reply) in refused.items()
            },
        }

    def _message(self, params: dict[str, Any], idempotency_key: str) -> tuple[EmailMessage, list]:
        sender = params.get("from") or self.config.get("from") or self.config.get("login")
        if not sender:
            raise InvalidCallError(f"connector {self.name!r} (smtp) needs from= (the sender)")
        lists = {field: _addresses(field, params.get(field)) for field in _ADDRESS_PARAMS}
        recipients = [address for field in _ADDRESS_PARAMS for address in lists[field]]
        if not recipients:
            raise InvalidCallError(f"connector {self.name!r} (smtp) needs to= (a recipient)")
        text, html = params.get("text"), params.get("html")
        message = EmailMessage()
        try:
            message["From"] = _text("from", sender)
            for field, header in (("to", "To"), ("cc", "Cc")):
                if lists[field]:
                    message[header] = ", ".join(lists[field])
            if params.get("reply_to"):
                message["Reply-To"] = _text("reply_to", params["reply_to"])
            message["Subject"] = _text("subject", params.get("subject") or "")
            message["Date"] = formatdate(localtime=False)
            message["Message-ID"] = f"<{idempotency_key.replace(':', '.')}@flowrt>"
            if html is not None and text is None:
                message.set_content(_text("html", html), subtype="html")
            else:
                message.set_content(_text("text", text or ""))
                if html is not None:
                    message.add_alternative(_text("html", html), subtype="html")
        except ValueError as error:  # a line break in a header, say
            raise InvalidCallError(f"connector {self.name!r} (smtp): {error}") from None
        return message, recipients

    def _explain(self, error: smtplib.SMTPException) -> str:
        where = f"connector {self.name!r}: the SMTP server {self._where}"
        if isinstance(error, smtplib.SMTPAuthenticationError):
            return f"{where} refused the login of {self.config.get('login')!r}: {_reply(error)}"
        if isinstance(error, smtplib.SMTPNotSupportedError) and self._use_tls:
            return f"{where} does not offer STARTTLS; pass use_tls=False to send in clear"
        if isinstance(error, smtplib.SMTPRecipientsRefused):
            refused = ", ".join(sorted(error.recipients))
            return f"{where} refused every recipient ({refused})"
        return f"{where} failed: {type(error).__name__}: {_reply(error)}"


def _addresses(field: str, value: object) -> list[str]:
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
        raise InvalidCallError(f"an SMTP call's {field}= must be an address or a list of them")
    found = [_text(field, item) for item in items if item.strip()]
    if any("\r" in address or "\n" in address for address in found):
        raise InvalidCallError(f"an SMTP call's {field}= holds a line break")
    return found


def _text(field: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidCallError(f"an SMTP call's {field}= must be text, not {type(value).__name__}")
    return value


def _reply(error: smtplib.SMTPException) -> str:
    code, reply = getattr(error, "smtp_code", None), getattr(error, "smtp_error", None)
    if isinstance(reply, bytes):
        reply = reply.decode(errors="replace")
    return f"{code} {reply}" if code is not None else str(error)
