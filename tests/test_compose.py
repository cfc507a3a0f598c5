"""The production topology (docker-compose.yml, Dockerfile, .env.example), checked by reading.

Docker is not needed: these tests parse the files and check what the services must get
right — the roles, the wiring of FLOWRT_* settings, the start order, and no credential
written in the files.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"

CELERY_ROLES = ("worker", "beat", "flower")
FLOWRT_SERVICES = ("migrate", *CELERY_ROLES)
SHARED_SETTINGS = ("FLOWRT_DATABASE_URL", "FLOWRT_BROKER_URL", "FLOWRT_SECRET")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|AUTH|KEY", re.IGNORECASE)
# A whole value taken from one variable: ${NAME}, ${NAME:?message}, ${NAME:-default}...
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<rest>[^}]*)\}")
# user:password@ inside a URL.
URL_CREDENTIALS = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:(?P<password>[^@\s]+)@")


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


def is_interpolation(value: str) -> bool:
    return INTERPOLATION.fullmatch(value) is not None


def is_required(value: str) -> bool:
    match = INTERPOLATION.fullmatch(value)
    return match is not None and match["rest"].startswith(("?", ":?"))


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


def test_no_credential_is_written_in_the_compose_file(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    text = COMPOSE.read_text()
    for match in URL_CREDENTIALS.finditer(text):
        assert match["password"].startswith("${"), f"literal password in URL: {match[0]}"
    blocks = {name: body for name, body in compose.items() if name.startswith("x-")}
    for name, service in {**blocks, **services}.items():
        for key, value in environment_of(service).items():
            if SECRET_NAME.search(key):
                assert is_interpolation(value), f"{name}: {key} is written in the file"
        for arg in command_of(service):
            if arg.startswith("--") and "=" in arg and SECRET_NAME.search(arg.split("=", 1)[0]):
                assert is_interpolation(arg.split("=", 1)[1]), f"{name}: literal {arg}"


def test_secrets_are_required_not_defaulted(services: dict[str, dict[str, Any]]) -> None:
    assert is_required(environment_of(services["postgres"])["POSTGRES_PASSWORD"])
    for name in FLOWRT_SERVICES:
        assert is_required(environment_of(services[name])["FLOWRT_SECRET"]), name


def test_flower_takes_basic_auth_from_the_environment(
    services: dict[str, dict[str, Any]],
) -> None:
    flower = services["flower"]
    auth = [arg for arg in command_of(flower) if arg.startswith("--basic-auth=")]
    assert auth, "flower runs without --basic-auth"
    value = auth[0].split("=", 1)[1]
    assert is_required(value), f"flower's basic auth is not a required variable: {value}"
    assert INTERPOLATION.fullmatch(value)["name"] == "FLOWER_BASIC_AUTH"  # type: ignore[index]
    assert "--port=5555" in command_of(flower)
    assert any(str(port).endswith("5555:5555") for port in flower.get("ports", []))


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


@pytest.mark.parametrize("name", FLOWRT_SERVICES)
def test_flowrt_services_share_the_settings(services: dict[str, dict[str, Any]], name: str) -> None:
    env = environment_of(services[name])
    for key in SHARED_SETTINGS:
        assert env.get(key), f"{name} lacks {key}"
    assert env["FLOWRT_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert "@postgres:5432/" in env["FLOWRT_DATABASE_URL"]
    assert env["FLOWRT_BROKER_URL"].startswith("redis://redis:6379/")


def test_services_with_the_flowrt_image_get_the_settings(
    services: dict[str, dict[str, Any]],
) -> None:
    # Any further service built from this project must get the settings too.
    for name, service in services.items():
        if "build" in service or command_of(service)[:1] in (["celery"], ["flowrt"]):
            env = environment_of(service)
            missing = [key for key in SHARED_SETTINGS if not env.get(key)]
            assert not missing, f"{name} runs flowrt without {missing}"


def test_workers_scale_with_distinct_node_names(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    replicas = str(worker["deploy"]["replicas"])
    assert INTERPOLATION.fullmatch(replicas)["name"] == "FLOWRT_WORKERS"  # type: ignore[index]
    # A fixed hostname or container name would give every replica the same node name
    # (celery@host) and so the same direct queue, or refuse to scale at all.
    assert "hostname" not in worker and "container_name" not in worker
    assert not any(arg in ("-n", "--hostname") for arg in command_of(worker))


def test_one_beat(services: dict[str, dict[str, Any]]) -> None:
    assert int(services["beat"].get("deploy", {}).get("replicas", 1)) == 1


def test_env_example_lists_every_required_variable() -> None:
    required = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*):?\?", COMPOSE.read_text()))
    assert {"POSTGRES_PASSWORD", "FLOWRT_SECRET", "FLOWER_BASIC_AUTH"} <= required
    given = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )
    assert required <= set(given), f".env.example misses {required - set(given)}"
    for name in required:
        # Placeholders only: an example must not ship a usable secret.
        assert given[name].strip() == "", f".env.example gives a value for {name}"


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
