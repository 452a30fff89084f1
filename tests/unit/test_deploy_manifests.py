"""The compose file and the Kubernetes manifests can't run here (no Docker, no cluster);
these checks keep them in step with the code: settings they set exist, commands they run
parse, and the image carries every package the `o2c` command imports."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.cli.main import build_parser
from services.settings import FILE_SUFFIX, Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
MANIFESTS = [DEPLOY / "compose.yaml", *sorted((DEPLOY / "k8s").glob("*.yaml"))]


def _documents(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _walk(node: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key), value
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def _o2c_variables(path: Path) -> set[str]:
    names: set[str] = set()
    for document in _documents(path):
        for key, value in _walk(document):
            if key.startswith("O2C_"):
                names.add(key)
            if key == "name" and isinstance(value, str) and value.startswith("O2C_"):
                names.add(value)
    return names


def _o2c_commands(path: Path) -> list[list[str]]:
    """Argument lists given to the `o2c` entry point (compose `command`, k8s `args`, and
    `o2c …` steps of an `sh -c` entrypoint)."""
    commands: list[list[str]] = []
    for document in _documents(path):
        for key, value in _walk(document):
            if key in ("command", "args") and isinstance(value, list):
                commands.append([str(v) for v in value])
            if key == "entrypoint" and isinstance(value, list) and value[:2] == ["sh", "-c"]:
                for step in str(value[2]).split("&&"):
                    words = shlex.split(step)
                    words = words[1:] if words[:1] == ["exec"] else words
                    assert words[:1] == ["o2c"], f"{path.name}: unexpected step {step!r}"
                    commands.append(words[1:])
    return commands


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifests_set_only_settings_that_exist(path: Path) -> None:
    known = {f"O2C_{name.upper()}" for name in Settings.model_fields}
    from_files = {f"{name}{FILE_SUFFIX}" for name in known}  # any setting, from a file
    assert _o2c_variables(path) - known - from_files == set()


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifests_run_commands_the_cli_accepts(path: Path) -> None:
    parser = build_parser()
    for command in _o2c_commands(path):
        parser.parse_args(command)  # exits (SystemExit) on an unknown command


def test_every_manifest_runs_at_least_one_command() -> None:
    assert all(_o2c_commands(p) for p in MANIFESTS if p.name not in _WITHOUT_COMMANDS)


_WITHOUT_COMMANDS = {"kustomization.yaml", "namespace.yaml", "config.yaml"}


def test_image_carries_every_package_of_the_distribution() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    for package in ("schemas", "services", "projections"):
        assert f"COPY {package} {package}" in dockerfile


def test_kustomization_lists_every_manifest() -> None:
    (kustomization,) = _documents(DEPLOY / "k8s" / "kustomization.yaml")
    listed = set(kustomization["resources"])
    present = {p.name for p in (DEPLOY / "k8s").glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present
