"""`zdte stack`: configuration shared with compose, and the real topology started on this host.

The tests marked ``stack`` start every service (SeaweedFS, MLflow, the code server, the
webserver, the daemon, Caddy; Postgres is the host's) on free ports with fresh credentials;
they take a couple of minutes, so `.ci/run` runs them after the quality gate
(`pytest -m stack`).
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

from zdte_assets import stack

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


@pytest.mark.stack
def test_stack_up_status_and_loopback_only(
    running_stack: dict[str, str], stack_env: dict[str, str]
) -> None:
    states = dict(stack.status(stack_env))
    assert all(s.startswith("ready") for s in states.values()), states
    listening = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout
    for port in (running_stack["ZDTE_S3_FILER_PORT"], running_stack["ZDTE_MLFLOW_PORT"]):
        local = [
            line.split()[3]
            for line in listening.splitlines()
            if line.split()[3].endswith(f":{port}")
        ]
        assert local and all(a.startswith(("127.0.0.1", "[::ffff:127.0.0.1]")) for a in local), (
            local
        )


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
