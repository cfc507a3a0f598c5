"""The production topology (docker-compose.yml, Dockerfile, .env.example), checked by reading.

Docker is not needed: these tests parse the files and check what the services must get
right — the roles, exactly one beat, the wiring of FLOWRT_* settings, the start order, and
no credential written in the files.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from config import defaults

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"

CELERY_ROLES = ("worker", "beat", "flower")
FLOWRT_SERVICES = ("migrate", *CELERY_ROLES)
SHARED_SETTINGS = ("FLOWRT_DATABASE_URL", "FLOWRT_BROKER_URL", "FLOWRT_SECRET")
# Settings an operator tunes per deployment; empty means the default of config/defaults.py.
TUNABLE_SETTINGS = (
    "FLOWRT_WORKER_CONCURRENCY",
    "FLOWRT_SLEEP_MAX_SECONDS",
    "FLOWRT_LEASE_SECONDS",
    "FLOWRT_MAX_STEP_SECONDS",
    "FLOWRT_MAX_CRASHES",
    "FLOWRT_SHUTDOWN_GRACE_SECONDS",
)
SECRET_NAME = re.compile(r"PASS|SECRET|TOKEN|AUTH|KEY", re.IGNORECASE)
# ${NAME}, ${NAME:?message}, ${NAME:-default}...; `$${` is an escaped dollar, not one.
INTERPOLATION = re.compile(r"(?<!\$)\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<rest>[^}]*)\}")
# [user]:password@ inside a URL (Redis URLs have no user).
URL_CREDENTIALS = re.compile(r"[a-z][a-z0-9+.-]*://(?P<user>[^/\s:@]*):(?P<password>[^@\s]+)@")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict), "docker-compose.yml is not a mapping"
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def command_of(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else [str(arg) for arg in command]


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(key): "" if value is None else str(value) for key, value in env.items()}


def interpolation(value: str) -> re.Match[str] | None:
    """The match when `value` is one whole `${NAME...}` and nothing else."""
    return INTERPOLATION.fullmatch(value)


def is_required(value: str) -> bool:
    match = interpolation(value)
    return match is not None and match["rest"].startswith(("?", ":?"))


def is_secret_reference(value: str) -> bool:
    """A whole `${NAME}` or `${NAME:?...}`: taken from the environment, no default written here."""
    match = interpolation(value)
    return match is not None and not match["rest"].startswith(("-", ":-", "+", ":+"))


def strings_in(node: Any, path: str = "") -> Iterator[tuple[str, str, str]]:
    """Every (path, key, value) of a string anywhere in the YAML tree; key is '' in lists."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, dict | list):
                yield from strings_in(value, f"{path}.{key}")
            else:
                yield f"{path}.{key}", str(key), "" if value is None else str(value)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            if isinstance(value, dict | list):
                yield from strings_in(value, f"{path}[{index}]")
            else:
                yield f"{path}[{index}]", "", str(value)


def flowrt_settings_of(service: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in environment_of(service).items() if k.startswith("FLOWRT_")}


def env_example_names(commented: bool = True) -> dict[str, str]:
    """Variables .env.example sets (`NAME=`), and with `commented` those it shows (`#NAME=`)."""
    pattern = r"#?([A-Z_][A-Z0-9_]*)=(.*)" if commented else r"([A-Z_][A-Z0-9_]*)=(.*)"
    names = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.fullmatch(pattern, line.strip())
        if match:
            names[match[1]] = match[2]
    return names


# --- roles ----------------------------------------------------------------------------------------


def test_every_role_is_a_service(services: dict[str, dict[str, Any]]) -> None:
    for name in ("redis", "postgres", "migrate", "worker", "beat", "flower"):
        assert name in services, f"docker-compose.yml has no {name!r} service"


@pytest.mark.parametrize("role", CELERY_ROLES)
def test_celery_roles_run_the_tasks_app(services: dict[str, dict[str, Any]], role: str) -> None:
    command = command_of(services[role])
    assert command[:3] == ["celery", "-A", "tasks"], f"{role}: {command}"
    assert command[3] == role, f"{role} runs `celery -A tasks {command[3]}`"


def test_migrate_upgrades_the_database_once(services: dict[str, dict[str, Any]]) -> None:
    migrate = services["migrate"]
    assert command_of(migrate) == ["flowrt", "db", "upgrade"]
    # A one-shot must not be restarted after it exits 0, or it never "completes".
    assert str(migrate.get("restart", "no")) == "no"


def test_exactly_one_beat_runs(services: dict[str, dict[str, Any]]) -> None:
    # Two beats would send every reaper pass twice; a worker with -B is a beat per replica.
    beat = services["beat"]
    assert beat.get("deploy", {}).get("replicas", 1) == 1, "beat must have one replica"
    assert "scale" not in beat
    running_beat = [
        name
        for name, service in services.items()
        if command_of(service)[3:4] == ["beat"]
        or {"-B", "--beat"} & set(command_of(service))
        or any(arg.startswith("--beat=") for arg in command_of(service))
    ]
    assert running_beat == ["beat"], f"services that run a beat: {running_beat}"


def test_beat_keeps_its_schedule_where_it_may_write(services: dict[str, dict[str, Any]]) -> None:
    # The image's code under /app is read-only to the user beat runs as.
    command = command_of(services["beat"])
    paths = [
        command[i + 1] for i, arg in enumerate(command[:-1]) if arg in ("-s", "--schedule")
    ] + [arg.split("=", 1)[1] for arg in command if arg.startswith("--schedule=")]
    assert len(paths) == 1, f"beat needs one --schedule in a writable place: {command}"
    home = re.search(r"--home-dir\s+(\S+)", DOCKERFILE.read_text())
    writable = ["/tmp/", *([home[1].rstrip("/") + "/"] if home else [])]
    assert paths[0].startswith(tuple(writable)), f"{paths[0]} is not under {writable}"


def test_workers_scale_with_distinct_node_names(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    replicas = str(worker["deploy"]["replicas"])
    assert interpolation(replicas)["name"] == "FLOWRT_WORKERS"  # type: ignore[index]
    # A fixed hostname or container name would give every replica the same node name
    # (celery@host) and so the same direct queue, or refuse to scale at all.
    assert "hostname" not in worker and "container_name" not in worker
    assert not any(arg in ("-n", "--hostname") for arg in command_of(worker))


def test_workers_stop_with_a_warm_shutdown(services: dict[str, dict[str, Any]]) -> None:
    # SIGTERM lets running steps finish and hands the executions over; SIGKILL comes later.
    worker = services["worker"]
    assert str(worker.get("stop_signal", "SIGTERM")) in ("SIGTERM", "TERM", "15")
    grace = re.fullmatch(r"(\d+)s", str(worker.get("stop_grace_period", "10s")))
    assert grace and int(grace[1]) >= 10, worker.get("stop_grace_period")
    # A worker exits by itself after its own grace, before compose would kill it.
    from config import defaults

    assert defaults.SHUTDOWN_GRACE_SECONDS < int(grace[1])


# --- start order and health -----------------------------------------------------------------------


@pytest.mark.parametrize("role", CELERY_ROLES)
def test_celery_roles_wait_for_migration_and_healthy_servers(
    services: dict[str, dict[str, Any]], role: str
) -> None:
    depends = services[role].get("depends_on")
    assert isinstance(depends, dict), f"{role}: depends_on needs conditions"
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert depends["redis"]["condition"] == "service_healthy"
    assert depends["postgres"]["condition"] == "service_healthy"


def test_migrate_waits_for_postgres(services: dict[str, dict[str, Any]]) -> None:
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_servers_have_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    assert "redis-cli ping" in " ".join(services["redis"]["healthcheck"]["test"])
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    assert any("postgresql/data" in str(v) for v in services["postgres"].get("volumes", []))


def test_redis_healthcheck_logs_in_and_needs_a_pong(services: dict[str, dict[str, Any]]) -> None:
    redis = services["redis"]
    password = redis_password_variable(redis)
    test = " ".join(redis["healthcheck"]["test"])
    # redis-cli logs in with REDISCLI_AUTH, or with -a on its command line.
    auth = interpolation(environment_of(redis).get("REDISCLI_AUTH", ""))
    logs_in = (auth is not None and auth["name"] == password) or f"${{{password}" in test
    assert logs_in, "the healthcheck does not log in to Redis"
    # `redis-cli ping` exits 0 on "NOAUTH Authentication required" too.
    assert "PONG" in test, f"the healthcheck trusts redis-cli's exit code: {test}"


# --- settings -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FLOWRT_SERVICES)
def test_flowrt_services_share_the_settings(services: dict[str, dict[str, Any]], name: str) -> None:
    env = environment_of(services[name])
    for key in SHARED_SETTINGS:
        assert env.get(key), f"{name} lacks {key}"
    assert env["FLOWRT_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert "@postgres:5432/" in env["FLOWRT_DATABASE_URL"]
    assert re.fullmatch(r"redis://(:[^@]+@)?redis:6379/\d+", env["FLOWRT_BROKER_URL"])
    # The workers, the reaper and the migration must see one database, broker and secret.
    assert flowrt_settings_of(services[name]) == flowrt_settings_of(services["worker"]), name


def test_services_with_the_flowrt_image_get_the_settings(
    services: dict[str, dict[str, Any]],
) -> None:
    # Any further service built from this project must get the settings too.
    for name, service in services.items():
        if "build" in service or command_of(service)[:1] in (["celery"], ["flowrt"]):
            env = environment_of(service)
            missing = [key for key in SHARED_SETTINGS if not env.get(key)]
            assert not missing, f"{name} runs flowrt without {missing}"


def test_every_flowrt_setting_in_the_file_exists(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for key in flowrt_settings_of(service):
            setting = key.removeprefix("FLOWRT_")
            assert hasattr(defaults, setting), f"{name}: {key} is not in config/defaults.py"


def test_tunable_settings_default_to_config_defaults(services: dict[str, dict[str, Any]]) -> None:
    env = flowrt_settings_of(services["worker"])
    for key in TUNABLE_SETTINGS:
        assert key in env, f"operators cannot set {key}"
    for key, value in env.items():
        match = interpolation(value)
        if key in SHARED_SETTINGS or match is None or not match["rest"].startswith((":-", "-")):
            continue
        # Passed through under its own name, empty when unset: one default, in defaults.py.
        assert match["name"] == key and match["rest"] in (":-", "-"), f"{key}: {value}"
        # Only a number falls back to its default when empty; an empty text setting (a
        # queue name, a URL) is taken as it is.
        default = getattr(defaults, key.removeprefix("FLOWRT_"))
        assert isinstance(default, int | float), f"{key}='' would not mean {default!r}"


# --- credentials ----------------------------------------------------------------------------------


def redis_password_variable(redis: dict[str, Any]) -> str:
    command = command_of(redis)
    assert "--requirepass" in command, "Redis runs without a password"
    match = interpolation(command[command.index("--requirepass") + 1])
    assert match, "Redis's password is written in the file"
    return match["name"]


def test_no_credential_is_written_in_the_compose_file(compose: dict[str, Any]) -> None:
    for path, key, value in strings_in(compose):
        for match in URL_CREDENTIALS.finditer(value):
            assert is_secret_reference(match["password"]), f"{path}: password in {match[0]}"
        if key and SECRET_NAME.search(key):
            assert is_secret_reference(value), f"{path}: {key} is written in the file"
    for name, service in compose["services"].items():
        command = command_of(service)
        for index, arg in enumerate(command):
            flag, equals, given = arg.partition("=")
            if not (flag.startswith("-") and SECRET_NAME.search(flag)):
                continue
            value = given if equals else (command[index + 1 : index + 2] or [""])[0]
            assert is_secret_reference(value), f"{name}: {flag} is written in the file"


def test_no_secret_variable_has_a_default(compose: dict[str, Any]) -> None:
    # ${POSTGRES_PASSWORD:-postgres} is a password written in the file after all.
    text = COMPOSE.read_text()
    for match in INTERPOLATION.finditer(text):
        if SECRET_NAME.search(match["name"]):
            assert is_secret_reference(match[0]), f"{match[0]} gives a secret a default"


def test_secrets_are_required_not_defaulted(services: dict[str, dict[str, Any]]) -> None:
    assert is_required(environment_of(services["postgres"])["POSTGRES_PASSWORD"])
    redis = command_of(services["redis"])
    assert is_required(redis[redis.index("--requirepass") + 1])
    for name in FLOWRT_SERVICES:
        assert is_required(environment_of(services[name])["FLOWRT_SECRET"]), name


def test_clients_log_in_with_the_servers_credentials(services: dict[str, dict[str, Any]]) -> None:
    env = environment_of(services["worker"])
    broker = URL_CREDENTIALS.match(env["FLOWRT_BROKER_URL"])
    assert broker, "the broker URL carries no password"
    client = interpolation(broker["password"])
    assert client and client["name"] == redis_password_variable(services["redis"])
    database = re.fullmatch(
        r"postgresql\+psycopg://(?P<user>[^:]+):(?P<password>[^@]+)@postgres:5432/(?P<db>\w+)",
        env["FLOWRT_DATABASE_URL"],
    )
    assert database, env["FLOWRT_DATABASE_URL"]
    postgres = environment_of(services["postgres"])
    assert database["user"] == postgres["POSTGRES_USER"]
    assert database["db"] == postgres["POSTGRES_DB"]
    server = interpolation(postgres["POSTGRES_PASSWORD"])
    client = interpolation(database["password"])
    assert server and client and client["name"] == server["name"]


def test_flower_requires_a_login_from_the_environment(
    services: dict[str, dict[str, Any]],
) -> None:
    flower = services["flower"]
    # Flower takes --basic-auth=... or the variable FLOWER_BASIC_AUTH.
    given = [arg.split("=", 1)[1] for arg in command_of(flower) if arg.startswith("--basic-auth=")]
    if "FLOWER_BASIC_AUTH" in environment_of(flower):
        given.append(environment_of(flower)["FLOWER_BASIC_AUTH"])
    assert len(given) == 1, f"flower's basic auth is given {len(given)} times"
    assert is_required(given[0]), f"flower's login is not a required variable: {given[0]}"
    assert "FLOWER_UNAUTHENTICATED_API" not in environment_of(flower)
    assert not any(arg.startswith(("--auth", "--unix")) for arg in command_of(flower))


def test_flower_is_published_on_its_port(services: dict[str, dict[str, Any]]) -> None:
    flower = services["flower"]
    assert "--port=5555" in command_of(flower)
    assert any(str(port).endswith(":5555:5555") for port in flower.get("ports", []))


# --- .env.example ---------------------------------------------------------------------------------


def test_env_example_lists_every_required_variable() -> None:
    required = {m["name"] for m in INTERPOLATION.finditer(COMPOSE.read_text()) if is_required(m[0])}
    assert {"POSTGRES_PASSWORD", "REDIS_PASSWORD", "FLOWRT_SECRET", "FLOWER_BASIC_AUTH"} <= required
    given = env_example_names(commented=False)
    assert required <= set(given), f".env.example misses {required - set(given)}"
    for name in required:
        # Placeholders only: an example must not ship a usable secret.
        assert given[name].strip() == "", f".env.example gives a value for {name}"


def test_env_example_names_every_variable_the_file_uses() -> None:
    used = {match["name"] for match in INTERPOLATION.finditer(COMPOSE.read_text())}
    missing = used - set(env_example_names())
    assert not missing, f".env.example does not mention {sorted(missing)}"


# --- Dockerfile -----------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    lines = [
        line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#")
    ]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    pairs = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def test_dockerfile_fixes_the_hash_seed() -> None:
    env = " ".join(rest for keyword, rest in dockerfile_instructions() if keyword == "ENV")
    assert re.search(r"(^|\s)PYTHONHASHSEED=\d+(\s|$)", env), "Dockerfile must set PYTHONHASHSEED"


def test_dockerfile_installs_the_project_and_drops_root() -> None:
    instructions = dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    assert any(k == "RUN" and "pip install ." in rest for k, rest in instructions)
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image must not run as root"
