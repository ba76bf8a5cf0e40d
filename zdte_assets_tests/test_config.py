"""The settings module is the one reader of the environment, and reads what it documents."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import zdte_assets
from zdte_assets.core import config

PACKAGE = Path(zdte_assets.__file__).parent
#: Methods of os.environ that set a variable (for a library or a child process) rather than read one.
SETTERS = {"setdefault", "pop"}


def environment_reads(source: str) -> list[int]:
    """Lines of `source` that read the process environment (os.environ or os.getenv)."""
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id != "os" or node.attr not in ("environ", "getenv", "environb"):
                continue
            parent = parents.get(node)
            if isinstance(parent, ast.Attribute) and parent.attr in SETTERS:
                continue
            if isinstance(parent, ast.Subscript) and isinstance(parent.ctx, ast.Store | ast.Del):
                continue
            lines.append(node.lineno)
    return sorted(lines)


def test_only_the_settings_module_reads_the_environment() -> None:
    found = {
        f"{path.relative_to(PACKAGE.parent)}:{line}"
        for path in PACKAGE.rglob("*.py")
        if path != PACKAGE / "core" / "config.py"
        for line in environment_reads(path.read_text())
    }
    assert not found, f"environment read outside zdte_assets/core/config.py: {sorted(found)}"


def test_the_checker_sees_reads_and_lets_writes_pass() -> None:
    reads = "import os\na = os.environ.get('X')\nb = os.getenv('Y')\nc = 'Z' in os.environ\n"
    writes = (
        "import os\nos.environ['X'] = '1'\nos.environ.setdefault('Y', '2')\nos.environ.pop('Z')\n"
    )
    assert environment_reads(reads) == [2, 3, 4]
    assert environment_reads(writes) == []


def test_s3_settings_follow_the_standard_aws_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_MAX_ATTEMPTS", raising=False)
    monkeypatch.delenv("AWS_RETRY_MODE", raising=False)
    plain = config.s3_settings()
    assert (plain.endpoint_url, plain.region_name, plain.retry_mode) == (None, None, "standard")
    assert plain.max_attempts >= 1

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://general:1")
    assert config.s3_settings().endpoint_url == "http://general:1"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://s3-only:2")  # the service-specific one wins
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    s = config.s3_settings()
    assert (s.endpoint_url, s.region_name, s.max_attempts) == (
        "http://s3-only:2",
        "eu-central-1",
        1,
    )
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "many")
    with pytest.raises(ValueError, match="AWS_MAX_ATTEMPTS='many'"):
        config.s3_settings()


def test_dagster_home_and_stack_dir_default_under_zdte_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZDTE_HOME", str(tmp_path))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("ZDTE_STACK_DIR", raising=False)
    assert config.dagster_home() == tmp_path.resolve() / "dagster"
    assert config.stack_dir() == tmp_path.resolve() / "stack"
    assert config.stack_dir({"ZDTE_HOME": str(tmp_path / "other")}) == (
        (tmp_path / "other").resolve() / "stack"
    )
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "elsewhere"))
    assert config.dagster_home() == (tmp_path / "elsewhere").resolve()


def test_configured_stores_and_automation(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in config.CONFIGURED_STORES:
        monkeypatch.delenv(name, raising=False)
    assert config.configured_stores() == {}
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    monkeypatch.setenv("ZDTE_OPTUNA_STORAGE", " ")  # blank is unset
    assert config.configured_stores() == {"MLFLOW_TRACKING_URI": "http://mlflow:5000"}

    monkeypatch.delenv("ZDTE_AUTOMATION", raising=False)
    assert not config.automation_on()
    for on in ("on", "ON", "1", "true", "running"):
        monkeypatch.setenv("ZDTE_AUTOMATION", on)
        assert config.automation_on()
    monkeypatch.setenv("ZDTE_AUTOMATION", "off")
    assert not config.automation_on()
