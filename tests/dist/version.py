#!/usr/bin/env python3
"""One version for every artifact (issue 19): `[workspace.package] version` in the root
Cargo.toml is the one place it is kept. Everything else that names it must agree, or read it:

- the workspace's path dependencies (what `cargo package` writes into the published crates);
- the Java SDK's pom and the poms that depend on it (Maven cannot read Cargo.toml);
- the Python package takes it from Cargo (`dynamic = ["version"]`, maturin);
- the Go module has no version in its files: a release tags `sdk-go/v<version>`;
- the scripts find the jar through scripts/dist/version.sh.

    python3 tests/dist/version.py      (make lint runs it)
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
POM = "{http://maven.apache.org/POM/4.0.0}"


def main() -> int:
    cargo = tomllib.loads((ROOT / "Cargo.toml").read_text())
    version = cargo["workspace"]["package"]["version"]
    printed = subprocess.run(
        [ROOT / "scripts/dist/version.sh"], check=True, capture_output=True, text=True
    ).stdout.strip()
    problems = []
    if printed != version:
        problems.append(f"scripts/dist/version.sh prints {printed!r}")
    for name, dep in cargo["workspace"]["dependencies"].items():
        if isinstance(dep, dict) and "path" in dep and dep.get("version", version) != version:
            problems.append(f"Cargo.toml: workspace dependency {name} = {dep['version']}")

    sdk = ET.parse(ROOT / "sdk-java/pom.xml").getroot()
    if (v := sdk.findtext(f"{POM}version")) != version:
        problems.append(f"sdk-java/pom.xml: project version {v}")
    for pom in sorted(ROOT.glob("**/pom.xml")):
        if "target" in pom.parts or pom == ROOT / "sdk-java/pom.xml":
            continue
        for dep in ET.parse(pom).getroot().iter(f"{POM}dependency"):
            if dep.findtext(f"{POM}groupId") == "io.rapidmq" and dep.findtext(
                f"{POM}artifactId"
            ) == "rapidmq":
                if (v := dep.findtext(f"{POM}version")) != version:
                    problems.append(f"{pom.relative_to(ROOT)}: depends on io.rapidmq:rapidmq {v}")

    pyproject = tomllib.loads((ROOT / "sdk-python/pyproject.toml").read_text())
    if "version" in pyproject["project"] or "version" not in pyproject["project"].get(
        "dynamic", []
    ):
        problems.append("sdk-python/pyproject.toml: the version must be dynamic (from Cargo)")

    for script in ROOT.glob("**/*.sh"):
        if "target" in script.parts or ".venv" in script.parts:
            continue
        if re.search(r"rapidmq/\d+\.\d+\.\d+/rapidmq-\d+\.\d+\.\d+\.jar", script.read_text()):
            problems.append(f"{script.relative_to(ROOT)}: names the jar's version; use scripts/dist/version.sh")

    for problem in problems:
        print(f"version drift: {problem} (the version is {version}, from Cargo.toml)")
    if not problems:
        print(f"one version everywhere: {version}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
