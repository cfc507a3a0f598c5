"""The app `celery -A tasks` runs: configured once from the FLOWRT_* environment."""

import sys

import config
from tasks.steps import create_app

try:
    _settings = config.load()
except config.SettingsError as error:
    # A worker that cannot be configured must not start: one clear line, exit code 2.
    print(f"error: {error}", file=sys.stderr)
    raise SystemExit(2) from None

app = create_app(_settings)
