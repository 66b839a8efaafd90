"""The package reports the one RapidMQ version (``[workspace.package]`` in the root Cargo.toml,
which every artifact carries) and the git revision its native core was built from."""

from __future__ import annotations

import importlib.metadata
import pathlib
import re

import pytest

import rapidmq

WORKSPACE_MANIFEST = pathlib.Path(__file__).resolve().parents[2] / "Cargo.toml"


def workspace_version() -> str:
    """``version`` of the ``[workspace.package]`` table (a line parser: tomllib is 3.11+)."""
    table = None
    for line in WORKSPACE_MANIFEST.read_text().splitlines():
        header = re.fullmatch(r"\s*\[([^\]]+)\]\s*", line)
        if header:
            table = header.group(1).strip()
        elif table == "workspace.package":
            found = re.fullmatch(r'\s*version\s*=\s*"([^"]+)"\s*', line)
            if found:
                return found.group(1)
    raise AssertionError(f"no [workspace.package] version in {WORKSPACE_MANIFEST}")


def test_version_is_the_workspace_version():
    assert rapidmq.__version__ == workspace_version()
    assert "__version__" in rapidmq.__all__


def test_installed_distribution_carries_the_same_version():
    try:
        installed = importlib.metadata.version("rapidmq")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("rapidmq is imported from the source tree, not installed")
    assert installed == rapidmq.__version__


def test_git_revision_is_reported():
    revision = rapidmq.__git_revision__
    assert isinstance(revision, str)
    assert revision.strip() == revision != ""
    assert "__git_revision__" in rapidmq.__all__
