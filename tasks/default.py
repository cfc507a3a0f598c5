"""The app `celery -A tasks` runs: configured once from the FLOWRT_* environment."""

import config
from tasks.steps import create_app

app = create_app(config.load())
