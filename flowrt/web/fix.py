"""Fix the script, keep the execution: which corrected script a check or restore names (pasted
source, or a registered flow's version), as the API takes it and the page offers it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from flowrt.client import Client

MAX_SCRIPT_CHARS = 1_000_000


class ScriptChoice(BaseModel):
    """The corrected flow: its source text, or version N of a registered flow ("NAME@N")."""

    script: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_SCRIPT_CHARS,
        description="The corrected flow's source text (never a file name).",
    )
    flow_version: str | None = Field(
        default=None, min_length=1, description='Version N of registered flow NAME: "NAME@N".'
    )

    @model_validator(mode="after")
    def _not_both(self) -> ScriptChoice:
        if self.script is not None and self.flow_version is not None:
            raise ValueError('give "script" (its source) or "flow_version" (NAME@N), not both')
        return self

    def source(self, client: Client) -> str | None:
        """The source text chosen (None: none); pasted text is always taken as source, never
        as the name of a file to read."""
        if self.flow_version is not None:
            return client.flow_version(self.flow_version)
        if self.script is None:
            return None
        return self.script if "\n" in self.script else self.script + "\n"


class CheckBody(ScriptChoice):
    """A script to check, up to a savepoint (default: the execution's head)."""

    to: str | None = Field(default=None, min_length=1, description="A savepoint id or name.")
    by: Literal["id", "name"] = "id"

    @model_validator(mode="after")
    def _one_of_them(self) -> CheckBody:
        if self.script is None and self.flow_version is None:
            raise ValueError(
                'give the corrected flow: "script" (its source) or "flow_version" (NAME@N)'
            )
        return self


def versions(client: Client, flow_name: str) -> list[dict[str, Any]]:
    """The registered versions of `flow_name`, newest first, for the page's choice."""
    return [
        {"ref": f"{v.flow}@{v.number}", "number": v.number, "hash": v.hash}
        for v in reversed(client.flow_versions(flow_name))
    ]
