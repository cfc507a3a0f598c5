"""Every default setting, with its unit; each is overridden by the FLOWRT_* variable of its name."""

# Folder for the embedded database and the generated signing secret (FLOWRT_HOME).
HOME = "~/.flowrt"

# SQLAlchemy URL of the database (FLOWRT_DATABASE_URL). Empty: SQLite file in HOME.
DATABASE_URL = ""

# Celery broker URL (FLOWRT_BROKER_URL). memory:// is the embedded, in-process broker.
BROKER_URL = "memory://localhost/"

# Secrets that sign stored state (FLOWRT_SECRET), comma-separated: the first signs, all
# verify, so a new key goes first and the old one stays listed until nothing it signed is
# needed. Each is at least 16 characters and holds no comma. Empty: with the embedded
# memory:// broker a random one kept in HOME/secret (mode 0600); with any other broker,
# workers and clients refuse to start.
SECRET = ""

# Seconds an execution may wait in worker memory before it is unloaded (FLOWRT_SLEEP_MAX_SECONDS).
SLEEP_MAX_SECONDS = 60.0

# Times one savepoint may be restored by its own flow before "restore loop" (FLOWRT_MAX_RESTORES).
MAX_RESTORES = 25

# Bytes a single Flow-API answer may take once serialised (FLOWRT_MAX_ANSWER_BYTES).
MAX_ANSWER_BYTES = 16 * 1024 * 1024

# Live executions a worker process keeps in memory between steps (FLOWRT_LIVE_MAX).
LIVE_MAX = 256

# Steps one worker process runs at once, in threads (FLOWRT_WORKER_CONCURRENCY).
WORKER_CONCURRENCY = 8

# Seconds a Redis message may stay unacknowledged before Redis redelivers it
# (FLOWRT_VISIBILITY_TIMEOUT_S); must be well above the longest Flow-API call.
VISIBILITY_TIMEOUT_S = 3600

# Name of the shared Celery queue every worker consumes (FLOWRT_QUEUE); the reaper's
# messages use the queue of that name with ".reap" added.
QUEUE = "flowrt"

# Seconds a worker answers for an execution without renewing its lease (FLOWRT_LEASE_SECONDS).
# A worker renews every third of it; after it a dead worker's executions go to another.
LEASE_SECONDS = 3.0

# Seconds between two passes of the reaper that beat starts (FLOWRT_REAP_INTERVAL_SECONDS).
REAP_INTERVAL_SECONDS = 1.0

# Steps a worker queues for itself at once before it sends further ones to the shared queue,
# for the least busy worker (FLOWRT_STICKY_MAX). A step that changes worker costs a claim
# and a replay, so keep it near FLOWRT_LIVE_MAX unless workers' loads differ a lot.
STICKY_MAX = 256

# Seconds a flow may run its own code without making a Flow-API call (FLOWRT_MAX_STEP_SECONDS);
# past it the flow is stopped and its execution ends ENDED_ERROR, naming the line it ran.
MAX_STEP_SECONDS = 600.0

# Worker deaths (SIGKILL, os._exit, segfault, OOM) at one savepoint after which an execution
# is quarantined, ENDED_ERROR and restorable, instead of handed to yet another worker
# (FLOWRT_MAX_CRASHES). A death counts once the execution ran alone (see README).
MAX_CRASHES = 3

# Seconds a worker told to stop (SIGTERM) waits for its steps before it hands over what it
# holds and exits anyway (FLOWRT_SHUTDOWN_GRACE_SECONDS); keep it under the supervisor's
# stop grace (compose: 30 s).
SHUTDOWN_GRACE_SECONDS = 20.0
# Attempts at a step's database write after its Flow-API call was performed, within the step,
# when the database fails transiently (FLOWRT_COMMIT_ATTEMPTS); the write alone is tried again,
# never the call. Keep the attempts' total wait well under LEASE_SECONDS.
COMMIT_ATTEMPTS = 5

# Seconds before the second attempt at that write, doubled for each further one
# (FLOWRT_COMMIT_RETRY_SECONDS), up to FLOWRT_COMMIT_RETRY_MAX_SECONDS.
COMMIT_RETRY_SECONDS = 0.05
COMMIT_RETRY_MAX_SECONDS = 1.0

# Times a step task that met a transient database fault is sent again (FLOWRT_STEP_RETRIES);
# after that it is dropped, and the reaper sends the execution on once its lease runs out.
STEP_RETRIES = 8

# Seconds before the first such retry, doubled for each further one (FLOWRT_STEP_RETRY_SECONDS),
# up to FLOWRT_STEP_RETRY_MAX_SECONDS: 0.5, 1, 2, ... 30, 30 (about 90 s in all).
STEP_RETRY_SECONDS = 0.5
STEP_RETRY_MAX_SECONDS = 30.0

# The user executions run as, what `system.get_own_user().get('name')` answers (FLOWRT_USER).
USER = "flowrt"

# The name of this flowrt environment, what `system.get_env_name()` answers (FLOWRT_ENV_NAME).
ENV_NAME = "flowrt"

# The client executions run for, what `system.get_own_client().get('name')` and
# `this.get('client_name')` answer (FLOWRT_CLIENT_NAME).
CLIENT_NAME = "flowrt"

# The web view's logins, user:password[,user2:password2] (FLOWRT_WEB_AUTH): `flowrt web` asks
# for HTTP basic auth on every route; empty, it serves loopback addresses only.
WEB_AUTH = ""

# Where operators open Flower (FLOWRT_FLOWER_URL, e.g. http://localhost:5555): the web view links
# an execution's steps to Flower's task search; empty, it shows no such link.
FLOWER_URL = ""
