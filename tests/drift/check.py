#!/usr/bin/env python3
"""SDK drift check: every public operation of the client core is in every SDK, or is listed
with the reason it does not apply (issue 18: "a drift test that lists every public operation of
the core and fails if an SDK lacks it").

The operations are the `pub fn` / `pub async fn` of the core's `impl Client`, `impl Admin`,
`impl Producer`, `impl Consumer` and `impl QueueConsumer` blocks. Each SDK must have each under
its naming convention, on its own type of the same role:

    rust    sdk-rust/src/lib.rs       `pub fn name` / `pub async fn name` in `impl Type`, or the
            core's own type re-exported (`pub use rapidmq_core::{Type, ...}`)
    python  python/rapidmq/client.py  `def name` in `class Type` (the sync API; its Admin is in
            admin.py), and in aio.py (the asyncio API)
    go      sdk-go/*.go               `func (x *Type) Name(`
    java    io/rapidmq/Type.java      a public method `name(` (camelCase)

unless tests/drift/exceptions.txt says otherwise for that SDK:
    other_name            the SDK's own name (`a|b`: either; for Go, `func Name` is a package
                          function), checked to exist
    n/a: reason           the operation does not apply to that SDK, and why
    gap: what is missing  a known gap, to be closed: allowed, and counted in the output
An exception that is no longer needed (the conventional name exists, or the operation is gone
from the core) fails the check too, so the list stays true.

    python3 tests/drift/check.py          (make lint runs it)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORE_TYPES = ("Client", "Admin", "Producer", "Consumer", "QueueConsumer")
SDKS = ("rust", "python", "go", "java")
JAVA_TYPES = {"Client": "RapidMQClient"}
# The Python SDK's two APIs and the files of each.
PYTHON_APIS = {"client.py": ("client.py", "admin.py"), "aio.py": ("aio.py",)}


def rust_ops(text: str, type_name: str) -> set[str]:
    """The `pub fn` names of the inherent `impl type_name {` blocks of a Rust file."""
    ops: set[str] = set()
    inside = False
    for line in text.splitlines():
        if re.match(rf"impl(<[^>]*>)? {type_name}\s*\{{", line):
            inside = True
        elif inside and line.startswith("}"):
            inside = False
        elif inside and (m := re.match(r"    pub (?:async )?fn (\w+)", line)):
            ops.add(m.group(1))
    return ops


def python_ops(text: str, class_name: str) -> set[str]:
    """The method names of `class class_name` in a Python file."""
    ops: set[str] = set()
    inside = False
    for line in text.splitlines():
        if re.match(r"class \w+", line):
            inside = re.match(rf"class {class_name}\b", line) is not None
        elif inside and (m := re.match(r"    (?:async )?def (\w+)", line)):
            ops.add(m.group(1))
    return ops


def camel(name: str, upper: bool) -> str:
    parts = name.split("_")
    head = parts[0].capitalize() if upper else parts[0]
    return head + "".join(p.capitalize() for p in parts[1:])


def core_ops(type_name: str) -> set[str]:
    """The `pub fn`s of the core's `impl type_name` blocks, wherever in core/src they are."""
    paths = sorted((ROOT / "core/src").rglob("*.rs"))
    return {op for path in paths for op in rust_ops(path.read_text(), type_name)}


def go_sources() -> list[str]:
    """The Go SDK's package sources, tests left out."""
    paths = sorted((ROOT / "sdk-go").glob("*.go"))
    return [p.read_text() for p in paths if not p.name.endswith("_test.go")]


def sdk_ops(sdk: str, type_name: str) -> dict[str, set[str]]:
    """What the SDK has on its type of `type_name`'s role, per place it must be (Python: the
    sync and the asyncio API)."""
    if sdk == "rust":
        lib = (ROOT / "sdk-rust/src/lib.rs").read_text()
        reexported = re.search(r"pub use rapidmq_core::\{([^}]*)\}", lib)
        if reexported and type_name in re.split(r"[\s,]+", reexported.group(1)):
            return {"lib.rs": core_ops(type_name)}
        return {"lib.rs": rust_ops(lib, type_name)}
    if sdk == "python":
        package = ROOT / "sdk-python/python/rapidmq"
        return {
            api: set().union(*(python_ops((package / f).read_text(), type_name) for f in files))
            for api, files in PYTHON_APIS.items()
        }
    if sdk == "go":
        method = rf"^func \(\w+ \*{type_name}\) (\w+)\("
        return {"sdk-go": {m for text in go_sources() for m in re.findall(method, text, re.M)}}
    java_type = JAVA_TYPES.get(type_name, type_name)
    source = (ROOT / f"sdk-java/src/main/java/io/rapidmq/{java_type}.java").read_text()
    pattern = r"^    public (?:static )?(?:<[^>]*> )?[\w<>\[\], ?.]+ (\w+)\("
    return {f"{java_type}.java": set(re.findall(pattern, source, re.M))}


def conventional(sdk: str, op: str) -> str:
    return {"go": camel(op, True), "java": camel(op, False)}.get(sdk, op)


def exceptions() -> dict[tuple[str, str], str]:
    """(`Type::op`, sdk) -> the SDK's own name, or `n/a: reason`."""
    out: dict[tuple[str, str], str] = {}
    lines = (ROOT / "tests/drift/exceptions.txt").read_text().splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split(None, 2)
        if len(fields) != 3 or fields[1] not in SDKS or "::" not in fields[0]:
            sys.exit(f"exceptions.txt:{number}: want `Type::op sdk name-or-n/a: reason`: {line}")
        key = (fields[0], fields[1])
        if key in out:
            sys.exit(f"exceptions.txt:{number}: {fields[0]} {fields[1]} listed twice")
        out[key] = fields[2]
    return out


def renamed(sdk: str, names: str, ops: set[str]) -> bool:
    """Whether one of the `|`-separated names exists (`func Name`: a Go package function)."""
    for name in names.split("|"):
        if name.startswith("func "):
            pattern = rf"^func {name[5:]}\("
            if sdk == "go" and any(re.search(pattern, text, re.M) for text in go_sources()):
                return True
        elif name in ops:
            return True
    return False


gaps: set[tuple[str, str]] = set()


def check() -> list[str]:
    problems: list[str] = []
    listed = exceptions()
    used: set[tuple[str, str]] = set()
    operations = set()
    for type_name in CORE_TYPES:
        for op in sorted(core_ops(type_name)):
            operations.add(f"{type_name}::{op}")
            for sdk in SDKS:
                key = (f"{type_name}::{op}", sdk)
                name = conventional(sdk, op)
                exception = listed.get(key)
                places = sdk_ops(sdk, type_name)
                if exception is not None:
                    used.add(key)
                    if all(name in ops for ops in places.values()):
                        problems.append(f"{sdk}: {type_name}::{op} is {name}; drop its exception")
                    elif exception.startswith("gap:"):
                        gaps.add(key)
                for place, ops in places.items():
                    if name in ops or (exception or "").startswith(("n/a:", "gap:")):
                        continue
                    if exception is None:
                        problems.append(f"{sdk}: {type_name}::{op} missing ({name} in {place})")
                    elif not renamed(sdk, exception, ops):
                        says = f"the exception says {exception}"
                        problems.append(f"{sdk}: {type_name}::{op} missing ({says}, in {place})")
    for key in sorted(set(listed) - used):
        problems.append(f"exceptions.txt: {key[0]} {key[1]} is not an operation of the core")
    if not operations:
        problems.append("no core operations found: the parser is out of date")
    return problems


def main() -> int:
    problems = check()
    for p in problems:
        print(f"drift: {p}", file=sys.stderr)
    if problems:
        rules = "tests/drift/check.py explains the rules"
        print(f"drift: {len(problems)} problems ({rules})", file=sys.stderr)
        return 1
    known = f"; {len(gaps)} known gaps are listed in tests/drift/exceptions.txt" if gaps else ""
    print(f"drift: every core operation is in every SDK or listed as not applying{known}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
