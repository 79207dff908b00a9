"""Dependency hygiene, run by `make lint` (and the suite, tests/test_dependency_hygiene.py).

1. Every workspace member declares what it imports: deptry on each member for third-party
   packages, and, for the `mmgen.*` namespace the members share (deptry sees one `mmgen`
   module), each `mmgen.<part>` import must be a declared dependency on the member providing it.
2. Licences: the runtime closure of every service and of the verifier (from uv.lock: what
   `pip install` of that member pulls in) holds only licences of the allow-list, checked by
   pip-licenses on the installed packages; the GPL local database (SecantusDB, a development
   tool run as a separate process by mmgen-localstack) is never in it.

Exit 0 when clean; otherwise each problem on its own line and exit 1.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MEMBERS = sorted(
    p.parent
    for pattern in ("libs/*", "services/*", "cli", "verifier")
    for p in ROOT.glob(f"{pattern}/pyproject.toml")
)
#: Declared but never imported, on purpose (deptry's DEP002), per member.
RUN_NOT_IMPORTED = {
    # `uvicorn --factory` runs the services' apps; nothing imports it.
    "*": ["uvicorn"],
    # started as a separate process (the local database); the local broker's client for checks
    "libs/localstack": ["secantusdb", "aiokafka"],
}
#: Imported only under an optional path that says how to install it (deptry's DEP003/DEP001).
OPTIONAL_IMPORTS = {
    # `--backend=containers`: testcontainers and its Docker client, from the dev group
    "libs/localstack": ["docker", "testcontainers", "pytest"],
}
#: Licences allowed in what a service or the verifier installs (pip-licenses --partial-match).
ALLOWED_LICENCES = [
    "MIT",
    "BSD",
    "Apache",
    "ISC",
    "PSF",
    "Python Software Foundation",
    "MPL-2.0",
    "Mozilla Public License 2.0",
    "0BSD",
    "Unlicense",
    "CC0",
    "Zlib",
]
RUNTIME_ROOTS = [
    "mmgen-identity",
    "mmgen-projects",
    "mmgen-profiles",
    "mmgen-consent",
    "mmgen-retention",
    "mmgen-witness",
    "mmgen-verify",
]
NEVER_SHIPPED = {"secantusdb"}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def member_name(member: Path) -> str:
    return str(tomllib.loads((member / "pyproject.toml").read_text())["project"]["name"])


def declared(member: Path) -> set[str]:
    project = tomllib.loads((member / "pyproject.toml").read_text())["project"]
    names = set()
    for requirement in project.get("dependencies", []):
        names.add(normalise(re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]))
    return names


def mmgen_parts(member: Path) -> dict[str, str]:
    """`mmgen.<part>` → the member (distribution name) whose source provides it."""
    out = {}
    for other in MEMBERS:
        for package in (other / "src" / "mmgen").iterdir():
            if package.is_dir() and (package / "__init__.py").exists():
                out[package.name] = normalise(member_name(other))
    return out


def mmgen_imports(member: Path) -> Iterator[tuple[Path, int, str]]:
    for path in sorted((member / "src").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                parts = name.split(".")
                if parts[0] == "mmgen" and len(parts) > 1:
                    yield path, node.lineno, parts[1]


def check_mmgen_declarations() -> list[str]:
    problems = []
    providers = mmgen_parts(MEMBERS[0])
    for member in MEMBERS:
        own = normalise(member_name(member))
        wanted = declared(member)
        for path, line, part in mmgen_imports(member):
            provider = providers.get(part)
            if provider is None:
                problems.append(f"{path.relative_to(ROOT)}:{line}: mmgen.{part} is no member's")
            elif provider != own and provider not in wanted:
                problems.append(
                    f"{path.relative_to(ROOT)}:{line}: imports mmgen.{part} but "
                    f"{member.relative_to(ROOT)}/pyproject.toml does not declare {provider}"
                )
    return sorted(set(problems))


def run_deptry() -> list[str]:
    problems = []
    mmgen_members = sorted(normalise(member_name(m)) for m in MEMBERS)
    for member in MEMBERS:
        relative = str(member.relative_to(ROOT))
        unused = [*mmgen_members, *RUN_NOT_IMPORTED["*"], *RUN_NOT_IMPORTED.get(relative, [])]
        optional = OPTIONAL_IMPORTS.get(relative, [])
        ignores = f"DEP002={'|'.join(unused)}"
        if optional:
            ignores += f",DEP003={'|'.join(optional)},DEP001={'|'.join(optional)}"
        done = subprocess.run(  # noqa: S603 - our own arguments
            [
                sys.executable,
                "-m",
                "deptry",
                ".",
                "--known-first-party",
                "mmgen",
                "--per-rule-ignores",
                ignores,
                "--no-ansi",
            ],
            cwd=member,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            for line in (done.stdout + done.stderr).splitlines():
                if re.search(r"DEP\d{3}", line):
                    problems.append(f"{relative}/{line.strip()}")
            if not problems:
                problems.append(f"{relative}: deptry failed: {done.stderr.strip()[-500:]}")
    return problems


def runtime_closure(roots: list[str]) -> set[str]:
    """Every package `pip install` of `roots` may pull in, per uv.lock (markers included)."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    packages = {normalise(p["name"]): p for p in lock["package"]}
    seen: set[str] = set()
    todo = [normalise(r) for r in roots]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        package = packages[name]
        for dep in package.get("dependencies", []):
            todo.append(normalise(dep["name"]))
            for extra in dep.get("extra", []):
                for extra_dep in package_extra(packages[normalise(dep["name"])], extra):
                    todo.append(normalise(extra_dep["name"]))
    return seen


def package_extra(package: dict[str, object], extra: str) -> list[dict[str, str]]:
    optional = package.get("optional-dependencies") or {}
    assert isinstance(optional, dict)
    return list(optional.get(extra, []))


def check_licences() -> list[str]:
    closure = runtime_closure(RUNTIME_ROOTS)
    problems = [
        f"{name} is in a service's or the verifier's runtime closure"
        for name in sorted(closure & NEVER_SHIPPED)
    ]
    third_party = sorted(n for n in closure if not n.startswith("mmgen-"))
    done = subprocess.run(  # noqa: S603 - our own arguments
        [
            sys.executable,
            "-m",
            "piplicenses",
            "--from=mixed",
            "--partial-match",
            f"--allow-only={';'.join(ALLOWED_LICENCES)}",
            "--packages",
            *third_party,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        problems.append(f"licences outside the allow-list: {(done.stdout + done.stderr).strip()}")
    return problems


def main() -> int:
    problems = [*check_mmgen_declarations(), *run_deptry(), *check_licences()]
    for problem in problems:
        print(problem)
    if not problems:
        print(f"dependencies: {len(MEMBERS)} members declare what they import; licences allowed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
