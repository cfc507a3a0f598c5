"""The SCP connector: copy one file to or from a host over SSH (paramiko's SFTP)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import paramiko

from flowrt.connectors.files import (
    LOCAL_PREFIX,
    RECORD_PREFIX,
    FileRecords,
    as_content,
    read_local,
    to_bytes,
    write_local,
)
from flowrt.connectors.ssh import SshConnector, positive_seconds
from flowrt.errors import ConnectorError, InvalidCallError

COPY_TIMEOUT_S = 60.0  # Cloudomation's default for copy_timeout: seconds without progress
_SIDES = (RECORD_PREFIX, LOCAL_PREFIX)


class ScpConnector(SshConnector):
    """Copies one file between the host (a plain path, relative to the login directory) and
    flowrt: `src='cloudomation:NAME'` (a flowrt file), `src='local:PATH'` (the worker's
    file) or `content=` (text or bytes) upload to `dst`; `dst='cloudomation:NAME'` or
    `dst='local:PATH'` download `src`, and without `dst` the download is returned as
    `content` (text when it is UTF-8, else bytes). Logs in as the SSH connector does.
    """

    type_name = "scp"
    call_params = ("src", "dst", "content", "copy_timeout")

    def call(self, params: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        self.check_params(params)
        src, dst = params.get("src"), params.get("dst")
        for what, value in (("src", src), ("dst", dst)):
            if value is not None and (not isinstance(value, str) or not value):
                raise InvalidCallError(f"connect({self.name!r}): {what} must be a path (text)")
        timeout_s = params.get("copy_timeout", COPY_TIMEOUT_S)
        if not positive_seconds(timeout_s):
            raise InvalidCallError(
                f"connect({self.name!r}): copy_timeout must be a positive number of seconds"
            )
        if "content" in params or _is_ours(src):
            return self._upload(params, src, dst, float(timeout_s))
        return self._download(src, dst, float(timeout_s))

    def _upload(
        self, params: dict[str, Any], src: str | None, dst: str | None, timeout_s: float
    ) -> dict[str, Any]:
        if ("content" in params) == (src is not None) or dst is None or _is_ours(dst):
            raise InvalidCallError(
                f"connect({self.name!r}): an upload takes dst='REMOTE/PATH' and one of "
                "src='cloudomation:NAME', src='local:PATH' or content=..."
            )
        if src is None:
            data = to_bytes(f"connect({self.name!r})", "content", params["content"])
        elif src.startswith(RECORD_PREFIX):
            data = FileRecords(self.store, self.name).read(src[len(RECORD_PREFIX) :])
        else:
            data = read_local(f"connect({self.name!r})", src[len(LOCAL_PREFIX) :])
        with self._sftp(timeout_s) as sftp:
            self._transfer("upload to", dst, lambda: sftp.putfo(io.BytesIO(data), dst))
        return {"src": src, "dst": dst, "size": len(data)}

    def _download(self, src: str | None, dst: str | None, timeout_s: float) -> dict[str, Any]:
        if src is None or (dst is not None and not _is_ours(dst)):
            raise InvalidCallError(
                f"connect({self.name!r}): give src='REMOTE/PATH' to download (to "
                "dst='cloudomation:NAME', dst='local:PATH', or without dst as content), or "
                "content=... / src='cloudomation:NAME' with dst='REMOTE/PATH' to upload"
            )
        buffer = io.BytesIO()
        with self._sftp(timeout_s) as sftp:
            self._transfer("download of", src, lambda: sftp.getfo(src, buffer))
        data = buffer.getvalue()
        if dst is None:
            return {"src": src, "dst": None, "size": len(data), "content": as_content(data)}
        if dst.startswith(RECORD_PREFIX):
            FileRecords(self.store, self.name).write(dst[len(RECORD_PREFIX) :], data)
        else:
            write_local(f"connect({self.name!r})", dst[len(LOCAL_PREFIX) :], data)
        return {"src": src, "dst": dst, "size": len(data)}

    @contextmanager
    def _sftp(self, timeout_s: float) -> Iterator[paramiko.SFTPClient]:
        with self.session() as client:
            try:
                sftp = client.open_sftp()
            except (OSError, paramiko.SSHException) as error:
                raise ConnectorError(
                    f"connector {self.name!r}: {self.where} offers no SFTP, which this "
                    f"connector copies with: {error}"
                ) from None
            try:
                sftp.get_channel().settimeout(timeout_s)  # a copy that stalls this long fails
                yield sftp
            finally:
                sftp.close()

    def _transfer(self, what: str, path: str, action: Any) -> None:
        try:
            action()
        except (OSError, paramiko.SSHException) as error:
            raise ConnectorError(
                self.masked(
                    f"connector {self.name!r}: the {what} {self.where}:{path} failed: "
                    f"{type(error).__name__}: {error}"
                )
            ) from None


def _is_ours(path: str | None) -> bool:
    return path is not None and path.startswith(_SIDES)
