"""docker/docker-compose.yml against the native stack (`zdte stack`): the same configuration.

There is no Docker engine here, so the compose file is read as compose reads it: YAML with its
merge keys, `${...}` interpolated from `--env-file docker/stack.env --env-file .env` (the
header's command), each service's `env_file` overlaid by its `environment`. The native side is
`stack.configuration()` with ZDTE_HOME in a temporary directory. Postgres' init script is run
for real against the host's server, under throwaway names.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib.util
import re
import secrets
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from zdte_assets.apps import stack
from zdte_assets_tests import services
from zdte_assets_tests.conftest import service_unavailable

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
COMPOSE_FILE = DOCKER / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
INIT_SCRIPT = DOCKER / "postgres-init.sh"

#: The Postgres superuser of the compose database (natively its role is ZDTE_PG_ADMIN_URL's),
#: and `weed server`'s encryption key (natively `weed mini` writes its own next to the data).
COMPOSE_ONLY = frozenset({"POSTGRES_USER", "POSTGRES_DB", "POSTGRES_PASSWORD", "WEED_S3_SSE_KEY"})
#: Natively the stack directory, and the UI password `up` hashes itself (compose gets the hash).
NATIVE_ONLY = frozenset({"ZDTE_STACK_DIR", "CADDY_AUTH_PASSWORD"})
#: Directories: the stack directory natively, the image's paths and volumes in compose.
PATHS = frozenset({"DAGSTER_HOME", "DAGSTER_COMPUTE_LOG_DIR", "ZDTE_HOME"})


# ------------------------------------------------------------------ compose, read as compose


class MissingVariable(AssertionError):
    """A required `${NAME:?...}` has no value: compose would stop."""


_REFERENCE = re.compile(r"\$(?:(\$)|\{(\w+)(?:(:?[-?])([^}]*))?\}|(\w+))")


def _interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's interpolation: `$$`, `$NAME`, `${NAME}`, `${NAME:-default}`, `${NAME:?error}`
    (and the forms without the colon, which test for unset only)."""

    def one(m: re.Match[str]) -> str:
        if m.group(1):
            return "$"
        name, op, arg = m.group(2) or m.group(5), m.group(3), m.group(4)
        value = env.get(name)
        missing = value is None or (op is not None and op.startswith(":") and value == "")
        if missing and op in (":?", "?"):
            raise MissingVariable(f"{name}: {arg}")
        if missing and op in (":-", "-"):
            return arg
        return value or ""

    return _REFERENCE.sub(one, text)


def _interpolated(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return _interpolate(node, env)
    if isinstance(node, list):
        return [_interpolated(item, env) for item in node]
    if isinstance(node, dict):
        return {key: _interpolated(value, env) for key, value in node.items()}
    return node


def _read_env(path: Path) -> dict[str, str]:
    """An env file as compose reads it: `NAME=value`, surrounding quotes removed."""
    out = {}
    for name, value in stack.read_env_file(path).items():
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[name] = value
    return out


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)


def _compose_text() -> str:
    """Every value of the compose file (what compose interpolates; not its comments)."""
    return "\n".join(_strings(yaml.safe_load(COMPOSE_FILE.read_text())))


def _raw_services() -> dict[str, Any]:
    services_: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    return services_


def _services(env: Mapping[str, str]) -> dict[str, Any]:
    services_: dict[str, Any] = _interpolated(_raw_services(), env)
    return services_


def _env_files(service: Mapping[str, Any]) -> list[Path]:
    entries = service.get("env_file") or []
    entries = [entries] if isinstance(entries, (str, dict)) else entries
    return [DOCKER / (e["path"] if isinstance(e, dict) else e) for e in entries]


def _effective_env(service: Mapping[str, Any]) -> dict[str, str]:
    """What the container gets: its env_file(s), overridden by its environment."""
    out: dict[str, str] = {}
    for path in _env_files(service):
        out.update(_read_env(path))
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    out.update({k: "" if v is None else str(v) for k, v in environment.items()})
    return out


def _argv(service: Mapping[str, Any]) -> list[str]:
    command = service.get("command") or []
    return command.split() if isinstance(command, str) else [str(w) for w in command]


def _mounts(service: Mapping[str, Any], name: str) -> bool:
    return any(str(v).split(":", 1)[0].endswith(name) for v in service.get("volumes") or [])


def _stack_env() -> dict[str, str]:
    return _read_env(stack.STACK_ENV_FILE)


def _secrets(native: Mapping[str, str]) -> dict[str, str]:
    """A .env for compose: the native stack's credentials where it has them (as .env.example
    suggests), fresh values for the others, every one distinct."""
    return {
        name: native.get(name) or f"{name.lower()}{secrets.token_hex(8)}"
        for name in _read_env(ENV_EXAMPLE)
    }


@pytest.fixture
def native(tmp_path: Path) -> dict[str, str]:
    return stack.configuration({"ZDTE_HOME": str(tmp_path)})


@pytest.fixture
def dot_env(native: dict[str, str]) -> dict[str, str]:
    return _secrets(native)


@pytest.fixture
def compose(dot_env: dict[str, str]) -> dict[str, Any]:
    """The services as `docker compose --env-file docker/stack.env --env-file .env` sees them."""
    return _services({**_stack_env(), **dot_env})


# ------------------------------------------------------------------------ what is read where


def _env_refs(node: Any) -> set[str]:
    """Names dagster.yaml or workspace.yaml take from the environment (`env: NAME`)."""
    if isinstance(node, dict):
        found = {node["env"]} if isinstance(node.get("env"), str) else set()
        return found.union(*(_env_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_env_refs(v) for v in node))
    return set()


def _caddy_reads() -> set[str]:
    """The Caddyfile's `{$NAME}` placeholders without a default of their own."""
    text = stack.CADDYFILE.read_text()
    return {m.group(1) for m in re.finditer(r"\{\$(\w+)\}", text)}


def _shell_reads(text: str) -> set[str]:
    return set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", text))


def _container_reads(raw: Mapping[str, Any]) -> set[str]:
    """Variables a service's own command or healthcheck expands inside the container ($$NAME)."""
    text = yaml.safe_dump({k: raw.get(k) for k in ("command", "healthcheck", "entrypoint")})
    return set(re.findall(r"\$\$\{?(\w+)", text))


def _reads(raw: Mapping[str, Any], service: Mapping[str, Any]) -> set[str]:
    """Every variable a compose service reads: from the shared files it runs on (by its program
    or its mounts) and in its own command and healthcheck."""
    argv = _argv(service)
    names = _container_reads(raw)
    if argv and argv[0].startswith("dagster"):
        names |= _env_refs(yaml.safe_load(stack.DAGSTER_YAML.read_text()))
    if "-w" in argv:
        names |= _env_refs(yaml.safe_load(stack.WORKSPACE.read_text()))
    if _mounts(service, "Caddyfile"):
        names |= _caddy_reads()
    if _mounts(service, INIT_SCRIPT.name):
        names |= _shell_reads(INIT_SCRIPT.read_text())
    return names


def test_every_variable_read_is_defined_in_compose_and_natively(
    compose: dict[str, Any], native: dict[str, str]
) -> None:
    stack_env, env_example = _stack_env(), _read_env(ENV_EXAMPLE)
    # Compose interpolates from stack.env and .env only.
    interpolated = {m.group(2) or m.group(5) for m in _REFERENCE.finditer(_compose_text())}
    interpolated.discard(None)
    assert interpolated - set(stack_env) - set(env_example) == set()
    raw = _raw_services()
    read_anywhere: set[str] = set()
    for name, service in compose.items():
        reads = _reads(raw[name], service)
        read_anywhere |= reads
        missing = reads - set(_effective_env(service))
        assert not missing, f"compose's {name} reads {sorted(missing)} but nothing defines them"
    # The shared files are read in compose at all (else the loop above proved nothing).
    for shared in (
        _env_refs(yaml.safe_load(stack.DAGSTER_YAML.read_text())),
        _env_refs(yaml.safe_load(stack.WORKSPACE.read_text())),
        _caddy_reads(),
        _shell_reads(INIT_SCRIPT.read_text()),
    ):
        assert shared and shared <= read_anywhere
    # Natively, every process gets process_env(); `up` hashes the UI password into
    # CADDY_AUTH_HASH with caddy (the stack tests log in through it); the init script's
    # superuser is compose's (natively ZDTE_PG_ADMIN_URL).
    env = stack.process_env(native)
    missing = read_anywhere - set(env) - {"CADDY_AUTH_HASH"} - COMPOSE_ONLY
    assert not missing, f"the native stack lacks {sorted(missing)}"
    # And the two define the same names.
    in_compose = set().union(*(_effective_env(s) for s in compose.values()))
    assert in_compose - COMPOSE_ONLY == set(native) - NATIVE_ONLY | {"CADDY_AUTH_HASH"}


def test_compose_sets_what_the_native_stack_derives_with_the_network_addresses(
    compose: dict[str, Any], dot_env: dict[str, str], tmp_path: Path
) -> None:
    """Per service: the native configuration, given only the settings compose overrides (the
    addresses inside its network), has the same value for every name both define."""
    stack_env = _stack_env()
    for name, service in compose.items():
        env = _effective_env(service)
        overrides = {k: v for k, v in env.items() if k in stack_env and v != stack_env[k]}
        # Only addresses differ inside the network; ports, names and buckets are stack.env's.
        assert all(k.endswith(("_HOST", "_BIND")) for k in overrides), (name, overrides)
        assert {v for k, v in overrides.items() if k.endswith("_HOST")} <= set(compose) | {
            "0.0.0.0"
        }, (name, overrides)
        native = stack.configuration({"ZDTE_HOME": str(tmp_path), **overrides})
        differ = {
            k: (env[k], native[k]) for k in set(env) & set(native) - PATHS if env[k] != native[k]
        }
        assert not differ, (name, differ)
        # Secrets are .env's, unchanged.
        assert all(env[k] == dot_env[k] for k in set(env) & set(dot_env)), name


def test_env_example_holds_only_secrets_and_every_interpolation_is_required() -> None:
    stack_env, env_example = _stack_env(), _read_env(ENV_EXAMPLE)
    assert env_example and not set(env_example) & set(stack_env)
    assert all(re.fullmatch(r"<[^<>]+>", v) for v in env_example.values()), env_example
    text = _compose_text()
    used = {m.group(2) for m in _REFERENCE.finditer(text) if m.group(2)}
    assert set(env_example) <= used, set(env_example) - used  # no secret nobody reads
    # Every secret the native stack generates that compose uses comes from .env.
    assert set(stack.SECRET_NAMES) & used <= set(env_example)
    # `${NAME:?...}` everywhere: a variable missing from .env or stack.env stops compose
    # instead of becoming an empty string.
    references = [m.group(0) for m in _REFERENCE.finditer(text) if not m.group(1)]
    assert references and all(re.match(r"\$\{\w+:\?", r) for r in references), references
    with pytest.raises(MissingVariable):
        _services(env_example)  # the secrets without stack.env
    with pytest.raises(MissingVariable):
        _services(stack_env)  # stack.env without the secrets


# --------------------------------------------------------------------------------- Postgres


def _postgres_service(compose: Mapping[str, Any]) -> str:
    (name,) = [n for n, s in compose.items() if _mounts(s, INIT_SCRIPT.name)]
    return name


def _prefixes(stack_env: Mapping[str, str]) -> list[str]:
    return sorted(k.removesuffix("_PG_USER") for k in stack_env if k.endswith("_PG_USER"))


def test_each_service_connects_to_postgres_as_its_own_user(
    compose: dict[str, Any], dot_env: dict[str, str]
) -> None:
    stack_env = _stack_env()
    pg = _postgres_service(compose)
    superuser = _effective_env(compose[pg])
    prefixes = _prefixes(stack_env)
    users = [stack_env[f"{p}_PG_USER"] for p in prefixes]
    assert len(set(users)) == len(users) and superuser["POSTGRES_USER"] not in users
    # Where each service's connection is configured: MLflow's backend URI, Optuna's storage.
    uris = {
        "MLFLOW": [("mlflow", "MLFLOW_BACKEND_STORE_URI")],
        "OPTUNA": [
            (n, "ZDTE_OPTUNA_STORAGE")
            for n, s in compose.items()
            if "ZDTE_OPTUNA_STORAGE" in _effective_env(s)
        ],
    }
    assert set(prefixes) == {"DAGSTER", *uris}
    for prefix, places in uris.items():
        assert places, prefix
        for name, var in places:
            url = urlparse(_effective_env(compose[name])[var])
            assert (url.username, url.password, url.hostname, str(url.port), url.path) == (
                stack_env[f"{prefix}_PG_USER"],
                dot_env[f"{prefix}_PG_PASSWORD"],
                pg,
                stack_env["ZDTE_PG_PORT"],
                "/" + stack_env[f"{prefix}_PG_DB"],
            ), (name, var)
    # Dagster's instance (dagster.yaml) in every Dagster process.
    dagster = [n for n, s in compose.items() if "DAGSTER_PG_USERNAME" in _effective_env(s)]
    assert dagster
    for name in dagster:
        env = _effective_env(compose[name])
        assert env["DAGSTER_PG_USERNAME"] == stack_env["DAGSTER_PG_USER"]
        assert env["DAGSTER_PG_PASSWORD"] == dot_env["DAGSTER_PG_PASSWORD"]
        assert env["DAGSTER_PG_DB"] == stack_env["DAGSTER_PG_DB"]
        assert env["DAGSTER_PG_HOST"] == pg
    # No container but Postgres' holds the superuser's password, and each holds only the
    # passwords of the users it connects as.
    needs = {
        "DAGSTER": set(dagster),
        **{p: {n for n, _ in places} for p, places in uris.items()},
    }
    for name, service in compose.items():
        if name == pg:
            continue
        values = " ".join(_effective_env(service).values())
        assert dot_env["POSTGRES_PASSWORD"] not in values, name
        for prefix in prefixes:
            holds = dot_env[f"{prefix}_PG_PASSWORD"] in values
            assert holds == (name in needs[prefix]), (name, prefix)


def _password_matches(stored: str, user: str, password: str) -> bool:
    """Whether pg_authid.rolpassword (SCRAM-SHA-256 or md5) is that of ``password``."""
    if stored.startswith("md5"):
        return stored == "md5" + hashlib.md5((password + user).encode()).hexdigest()
    m = re.fullmatch(r"SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)", stored)
    assert m, stored
    salted = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), base64.b64decode(m.group(2)), int(m.group(1))
    )
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    return base64.b64encode(hashlib.sha256(client_key).digest()).decode() == m.group(
        3
    ) and base64.b64encode(server_key).decode() == m.group(4)


def _ends(column: str) -> str:
    """SQL: ``column`` ends with the parameter ``s`` (LIKE would read its '_' as a wildcard)."""
    return f"right({column}, length(%(s)s)) = %(s)s"


@pytest.fixture
def init_env(compose: dict[str, Any]) -> Iterator[tuple[dict[str, str], str]]:
    """The Postgres container's environment for the init script, pointed at the host's server
    (its superuser), with a unique suffix on every role and database name; whatever carries
    the suffix is dropped afterwards."""
    ok, reason = services.postgres_available()
    if not ok:
        service_unavailable(reason)
    psql = subprocess.run(["sh", "-c", "command -v psql"], capture_output=True, text=True)
    if psql.returncode != 0:
        service_unavailable("psql not on PATH")
    suffix = "_t" + secrets.token_hex(4)
    env = _effective_env(compose[_postgres_service(compose)])
    for prefix in _prefixes(_stack_env()):
        for part in ("USER", "DB"):
            env[f"{prefix}_PG_{part}"] += suffix
    env.update(
        PATH=str(Path(psql.stdout.strip()).parent) + ":/usr/bin:/bin",
        PGHOST=services.PG_HOST,
        PGPORT=str(services.PG_PORT),
        POSTGRES_USER=services.PG_USER,
        POSTGRES_DB="postgres",
    )
    try:
        yield env, suffix
    finally:
        conn = services._pg_connect()
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT datname FROM pg_database WHERE " + _ends("datname"), {"s": suffix})
            for (db,) in cur.fetchall():
                cur.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            cur.execute("SELECT rolname FROM pg_roles WHERE " + _ends("rolname"), {"s": suffix})
            for (role,) in cur.fetchall():
                cur.execute(f'DROP ROLE IF EXISTS "{role}"')
        conn.close()


def _run_init(env: Mapping[str, str]) -> None:
    done = subprocess.run(["sh", str(INIT_SCRIPT)], env=dict(env), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_postgres_init_creates_one_least_privilege_user_and_database_per_service(
    init_env: tuple[dict[str, str], str],
) -> None:
    env, suffix = init_env
    prefixes = _prefixes(_stack_env())
    _run_init(env)
    # Run again with new passwords, as after rotating them in .env: they are reset, nothing
    # else changes.
    for prefix in prefixes:
        env[f"{prefix}_PG_PASSWORD"] = secrets.token_hex(12)
    _run_init(env)

    roles = {p: env[f"{p}_PG_USER"] for p in prefixes}
    dbs = {p: env[f"{p}_PG_DB"] for p in prefixes}
    conn = services._pg_connect()
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole, rolcanlogin, rolpassword"
                " FROM pg_authid WHERE " + _ends("rolname"),
                {"s": suffix},
            )
            found = {row[0]: row[1:] for row in cur.fetchall()}
            cur.execute(
                "SELECT datname, pg_get_userbyid(datdba) FROM pg_database WHERE "
                + _ends("datname"),
                {"s": suffix},
            )
            owners = dict(cur.fetchall())
            # Exactly the users and databases stack.env names, each database its user's.
            assert set(found) == set(roles.values())
            assert owners == {dbs[p]: roles[p] for p in prefixes}
            for prefix, role in roles.items():
                superuser, createdb, createrole, login, stored = found[role]
                assert (superuser, createdb, createrole, login) == (False, False, False, True)
                assert _password_matches(stored, role, env[f"{prefix}_PG_PASSWORD"]), role
            # Only its owner may connect to a database: not PUBLIC, not the other services.
            for prefix, db in dbs.items():
                for who in ["public", *roles.values()]:
                    cur.execute("SELECT has_database_privilege(%s, %s, 'CONNECT')", (who, db))
                    assert cur.fetchone() == (who == roles[prefix],), (who, db)
    finally:
        conn.close()


# ------------------------------------------------------------------------------- S3 buckets


def test_create_buckets_creates_the_buckets_stack_env_names(
    compose: dict[str, Any], native: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = importlib.util.spec_from_file_location("create_buckets", DOCKER / "create-buckets.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    stack_env = _stack_env()
    expected = sorted({stack_env["ZDTE_BUCKET"], stack_env["ZDTE_MLFLOW_BUCKET"]})
    (job,) = [s for s in compose.values() if "create-buckets.py" in " ".join(_argv(s))]
    for env in (_effective_env(job), native):
        for var in ("ZDTE_STORAGE_URL", "MLFLOW_ARTIFACTS_DESTINATION"):
            monkeypatch.setenv(var, env[var])
        assert module.buckets() == expected
    # MLflow's server writes where that bucket is.
    destination = _flag(_argv(compose["mlflow"]), "--artifacts-destination")
    assert destination == native["MLFLOW_ARTIFACTS_DESTINATION"]


# ------------------------------------------------------------------ services, ports, health


#: The native stack's services and their compose counterparts.
COMPOSE_NAMES = {
    "postgres": "postgres",
    "s3": "seaweedfs",
    "mlflow": "mlflow",
    "code": "zdte-code",
    "webserver": "dagster-webserver",
    "daemon": "dagster-daemon",
    "authgate": "auth-gate",
    "caddy": "caddy",
}


def _flag(command: list[str] | str, flag: str) -> str:
    words = command.split() if isinstance(command, str) else command
    for i, word in enumerate(words):
        if word == flag:
            return words[i + 1]
        if word.startswith(flag + "="):
            return word.split("=", 1)[1]
    raise AssertionError(f"{flag} not in {words}")


def test_compose_and_the_native_stack_agree_on_services_ports_and_health(
    tmp_path: Path, compose: dict[str, Any]
) -> None:
    assert [s.name for s in stack.SERVICES] == list(COMPOSE_NAMES)
    assert set(COMPOSE_NAMES.values()) <= set(compose)
    defaults = stack.read_env_file(stack.STACK_ENV_FILE)
    # Each service listens on the port stack.env gives it, in both.
    assert _flag(compose["zdte-code"]["command"], "-p") == defaults["ZDTE_CODE_PORT"]
    assert _flag(compose["dagster-webserver"]["command"], "-p") == defaults["ZDTE_WEBSERVER_PORT"]
    assert _flag(compose["mlflow"]["command"], "--port") == defaults["ZDTE_MLFLOW_PORT"]
    assert _flag(compose["seaweedfs"]["command"], "-s3.port") == defaults["ZDTE_S3_PORT"]
    code_env = _effective_env(compose["zdte-code"])
    assert code_env["ZDTE_CODE_PORT"] == defaults["ZDTE_CODE_PORT"]
    cfg = stack.configuration({"ZDTE_HOME": str(tmp_path)})
    native = {s.name: s.argv(cfg) for s in stack.SERVICES if s.name not in ("postgres", "caddy")}
    assert _flag(native["code"], "-p") == defaults["ZDTE_CODE_PORT"]
    assert _flag(native["webserver"], "-p") == defaults["ZDTE_WEBSERVER_PORT"]
    assert _flag(native["mlflow"], "--port") == defaults["ZDTE_MLFLOW_PORT"]
    assert _flag(native["s3"], "-s3.port") == defaults["ZDTE_S3_PORT"]
    # The processes both topologies run are the same programs on the same modules.
    assert compose["zdte-code"]["command"][:5] == [
        "dagster",
        "code-server",
        "start",
        "-m",
        "zdte_assets.definitions",
    ]
    assert Path(native["code"][0]).name == "dagster" and native["code"][1:5] == [
        "code-server",
        "start",
        "-m",
        "zdte_assets.definitions",
    ]
    # In compose, whatever another service waits for has a healthcheck, and dependants wait
    # for health (or for a one-shot job to complete), never for a mere start.
    for name, service in compose.items():
        for dep, cond in (service.get("depends_on") or {}).items():
            assert cond["condition"] in ("service_healthy", "service_completed_successfully"), (
                name,
                dep,
            )
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in compose[dep], dep
    # Postgres' check goes over TCP, like every client.
    assert "-h 127.0.0.1" in " ".join(compose["postgres"]["healthcheck"]["test"])


def test_compose_binds_listens_and_publishes_where_its_environment_says(
    compose: dict[str, Any],
) -> None:
    stack_env = _stack_env()
    code = _effective_env(compose["zdte-code"])
    # Servers bind to ZDTE_BIND and SeaweedFS announces the host the clients use.
    assert _flag(_argv(compose["zdte-code"]), "-h") == code["ZDTE_BIND"]
    assert _flag(_argv(compose["dagster-webserver"]), "-h") == code["ZDTE_BIND"]
    assert _flag(_argv(compose["mlflow"]), "--host") == code["ZDTE_BIND"]
    assert _flag(_argv(compose["seaweedfs"]), "-ip.bind") == code["ZDTE_BIND"]
    assert _flag(_argv(compose["seaweedfs"]), "-ip") == code["ZDTE_S3_HOST"]
    # Postgres listens (its image's port, which the healthcheck probes) where clients connect.
    health = " ".join(compose["postgres"]["healthcheck"]["test"])
    assert _flag(health, "-p") == code["DAGSTER_PG_PORT"] == stack_env["ZDTE_PG_PORT"]
    # Caddy publishes stack.env's public port, which its sites name, and proxies to the
    # webserver and MLflow where they listen.
    caddy = _effective_env(compose["caddy"])
    https = stack_env["ZDTE_HTTPS_PORT"]
    assert [str(p) for p in compose["caddy"]["ports"]] == [f"{https}:{https}"]
    for site in ("ZDTE_DAGSTER_SITE", "ZDTE_MLFLOW_SITE"):
        assert str(urlparse(caddy[site]).port) == https, site
    assert caddy["ZDTE_WEBSERVER_HOST"] == "dagster-webserver"
    assert caddy["ZDTE_WEBSERVER_PORT"] == _flag(_argv(compose["dagster-webserver"]), "-p")
    assert caddy["ZDTE_MLFLOW_HOST"] == "mlflow"
    assert caddy["ZDTE_MLFLOW_PORT"] == _flag(_argv(compose["mlflow"]), "--port")
