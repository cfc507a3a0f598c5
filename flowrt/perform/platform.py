"""Calls on the platform around the execution: `system.get`, the user, the client and the
environment."""

from __future__ import annotations

from flowrt.errors import InvalidCallError
from flowrt.perform.base import PERFORMERS, Result, StepContext, done, performer


@performer("system.get")
def _system_get(context: StepContext, field: str) -> Result:
    # Flows of Cloudomation's library read their inputs as system.get('input_value'): the
    # fields of this execution, as this.get(field).
    try:
        return PERFORMERS["get"](context, field)
    except InvalidCallError as error:
        raise InvalidCallError(str(error).replace("this.get", "system.get", 1)) from None


@performer("system.get_own_user")
def _get_own_user(context: StepContext) -> Result:
    return done({"name": context.options.user_name})


@performer("system.get_own_client")
def _get_own_client(context: StepContext) -> Result:
    return done({"name": context.options.client_name})


@performer("system.get_env_name")
def _get_env_name(context: StepContext) -> Result:
    return done(context.options.env_name)
