"""`zdte stack`: configuration shared with compose, and the real topology started on this host.

The tests marked ``stack`` start every service (SeaweedFS, MLflow, the code server, the
webserver, the daemon, the login gate, Caddy; Postgres is the host's) on free ports with fresh
credentials; they take a couple of minutes, so `.ci/run` runs them after the quality gate
(`pytest -m stack`).
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

from zdte_assets.apps import stack

ROOT = Path(__file__).resolve().parent.parent


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "ZDTE_HOME": str(tmp), **extra}


def test_credentials_are_generated_once_private_and_reused(tmp_path: Path) -> None:
    first = stack.configuration(_env(tmp_path))
    path = tmp_path / "stack" / "credentials.env"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert all(first[name] for name in stack.SECRET_NAMES)
    assert len({first[n] for n in stack.SECRET_NAMES}) == len(stack.SECRET_NAMES)
    again = stack.configuration(_env(tmp_path))
    assert all(again[n] == first[n] for n in stack.SECRET_NAMES)
    # Passwords land inside URLs: nothing that would need quoting.
    assert all(re.fullmatch(r"[A-Za-z0-9]+", first[n]) for n in stack.SECRET_NAMES)


def test_the_environment_overrides_stack_env_and_services_never_see_admin_secrets(
    tmp_path: Path,
) -> None:
    cfg = stack.configuration(_env(tmp_path, ZDTE_MLFLOW_PORT="5999"))
    assert cfg["MLFLOW_TRACKING_URI"].endswith(":5999")
    env = stack.process_env(cfg)
    assert "ZDTE_PG_ADMIN_URL" not in env and "CADDY_AUTH_PASSWORD" not in env
    assert env["DAGSTER_PG_PASSWORD"] == cfg["DAGSTER_PG_PASSWORD"]


def test_a_malformed_stack_env_line_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "stack.env"
    bad.write_text("ZDTE_BIND=127.0.0.1\nnot a setting\n")
    with pytest.raises(stack.StackError, match=r"stack.env line 2: expected NAME=value"):
        stack.read_env_file(bad)


# ------------------------------------------------------------------------ the real stack


def _https(
    path: str,
    site: str,
    port: int,
    auth: tuple[str, str] | None,
    *,
    method: str = "GET",
    body: str | None = None,
    headers: dict[str, str] | None = None,
) -> int:
    """HTTP status of a request through Caddy with curl, the site name resolved to loopback
    as a hosts entry would (Caddy's internal CA is not in this machine's trust store: -k)."""
    cmd = ["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", "-X", method]
    cmd += ["--resolve", f"{site}:{port}:127.0.0.1"]
    if auth:
        cmd += ["-u", f"{auth[0]}:{auth[1]}"]
    for k, v in (headers or {}).items():
        cmd += ["-H", f"{k}: {v}"]
    if body is not None:
        cmd += ["--data", body]
    out = subprocess.run([*cmd, f"https://{site}:{port}{path}"], capture_output=True, text=True)
    return int(out.stdout or 0)


def _listening() -> list[tuple[str, int, set[int]]]:
    """(address, port, pids) of every listening TCP socket of this machine."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    sockets = []
    for line in out.splitlines():
        local = line.split()[3]
        host, _, port = local.rpartition(":")
        pids = {int(p) for p in re.findall(r"pid=(\d+)", line)}
        sockets.append((host.strip("[]"), int(port), pids))
    return sockets


def _is_loopback(host: str) -> bool:
    host = host.split("%")[0]
    if host in ("*", ""):
        return False
    ip = ipaddress.ip_address(host)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


@pytest.mark.stack
def test_stack_up_status_and_loopback_only(
    running_stack: dict[str, str], stack_env: dict[str, str]
) -> None:
    states = dict(stack.status(stack_env))
    assert all(s.startswith("ready") for s in states.values()), states
    # Every port any process of the stack listens on, but Caddy's public one, is on loopback.
    cfg = running_stack
    # Each service runs in a process group of its own (its leader's pid is in run/), so the
    # sockets its children open (weed's gRPC ports, the code server's worker) count too.
    groups = {
        pid: s.name for s in stack.SERVICES if (pid := stack.running_pid(cfg, s.name)) is not None
    }
    owners: dict[tuple[str, int], str] = {}
    for host, port, pids in _listening():
        for pid in pids:
            try:
                group = os.getpgid(pid)
            except ProcessLookupError:
                continue
            if group in groups:
                owners[(host, port)] = groups[group]
    public = (cfg["ZDTE_PUBLIC_HOST"], int(cfg["ZDTE_HTTPS_PORT"]))
    exposed = {a: name for a, name in owners.items() if a != public and not _is_loopback(a[0])}
    assert not exposed, exposed
    # And the ports the stack is configured with are among them, each by its service.
    by_port = {port: name for (_, port), name in owners.items()}
    expected = {
        "ZDTE_S3_PORT": "s3",
        "ZDTE_S3_MASTER_PORT": "s3",
        "ZDTE_S3_VOLUME_PORT": "s3",
        "ZDTE_S3_FILER_PORT": "s3",
        "ZDTE_S3_ADMIN_PORT": "s3",
        "ZDTE_MLFLOW_PORT": "mlflow",
        "ZDTE_CODE_PORT": "code",
        "ZDTE_WEBSERVER_PORT": "webserver",
        "ZDTE_AUTHGATE_PORT": "authgate",
        "ZDTE_CADDY_ADMIN_PORT": "caddy",
        "ZDTE_HTTPS_PORT": "caddy",
    }
    for var, name in expected.items():
        assert by_port.get(int(cfg[var])) == name, (var, cfg[var], sorted(owners.items()))
    # Every service but the daemon listens (so none escaped the check by not being found).
    assert set(groups.values()) - {"daemon"} <= set(by_port.values())


@pytest.mark.stack
def test_caddy_requires_credentials_and_passes_mlflow_ui_posts(
    running_stack: dict[str, str],
) -> None:
    port = int(running_stack["ZDTE_HTTPS_PORT"])
    auth = (running_stack["CADDY_AUTH_USER"], running_stack["CADDY_AUTH_PASSWORD"])
    for site in ("dagster.localhost", "mlflow.localhost"):
        assert _https("/", site, port, None) == 401
        assert _https("/", site, port, ("desk", "wrong")) == 401
        assert _https("/", site, port, auth) == 200
    # The MLflow UI's run search is a POST with the browser's Origin header.
    status = _https(
        "/ajax-api/2.0/mlflow/experiments/search",
        "mlflow.localhost",
        port,
        auth,
        method="POST",
        body='{"max_results": 5}',
        headers={"Origin": f"https://mlflow.localhost:{port}", "Content-Type": "application/json"},
    )
    assert status == 200
