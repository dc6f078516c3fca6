"""Which wheels the GPU check needs, and whether a folder holds them all.

    python3 tools/gpu_wheels.py roots                 # requirements: pyproject + bench + extras
    python3 tools/gpu_wheels.py pins REPORT.json      # name==version from `pip install --report`
    python3 tools/gpu_wheels.py check DIR             # what DIR lacks for this Python, or nothing

The GPU machine has torch (with Triton and the CUDA libraries) and nothing else; it reaches no
package index. ``check`` runs there with the bare Python, so this file uses the standard library
and the ``packaging`` that pip carries. A requirement is met by a wheel in DIR that this Python
can install, or by a distribution already installed (torch); a wheel's own requirements are
followed in turn.
"""

from __future__ import annotations

import json
import re
import sys
import zipfile
from email.parser import Parser
from importlib import metadata
from pathlib import Path

try:
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.tags import parse_tag, sys_tags
    from pip._vendor.packaging.utils import canonicalize_name
    from pip._vendor.packaging.version import Version
except ImportError:  # pragma: no cover - pip without vendored packaging
    from packaging.requirements import Requirement
    from packaging.tags import parse_tag, sys_tags
    from packaging.utils import canonicalize_name
    from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
EXTRAS = REPO / "tools" / "gpu_wheels.txt"
MACHINE = re.compile(r"^(torch|triton|nvidia-.*|cuda-.*)$")
"""Distributions the GPU machine brings with torch: never fetched."""


def _pyproject() -> dict:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        from pip._vendor import tomli as tomllib
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def roots() -> list[str]:
    """pyproject's dependencies, its bench extra (the benchmark peers) and tools/gpu_wheels.txt."""
    project = _pyproject()["project"]
    lines = [line.split("#")[0].strip() for line in EXTRAS.read_text().splitlines()]
    return [
        *project["dependencies"],
        *project["optional-dependencies"]["bench"],
        *filter(None, lines),
    ]


def pins(report: Path) -> list[str]:
    """name==version of every distribution a ``pip install --dry-run --report`` resolved,
    less the ones the GPU machine brings."""
    found = []
    for item in json.loads(report.read_text())["install"]:
        name, version = item["metadata"]["name"], item["metadata"]["version"]
        if not MACHINE.match(canonicalize_name(name)):
            found.append(f"{name}=={version}")
    return sorted(found)


def _wheels(folder: Path) -> dict[str, tuple[Version, Path]]:
    found = {}
    for path in sorted(folder.glob("*.whl")) if folder.is_dir() else []:
        name, version = path.name.split("-")[:2]
        found[canonicalize_name(name)] = (Version(version), path)
    return found


def _requires(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        message = Parser().parsestr(archive.read(name).decode())
    return message.get_all("Requires-Dist") or []


def missing(folder: Path) -> list[str]:
    """Every requirement neither a wheel in ``folder`` nor an installed distribution meets,
    and every wheel this Python cannot install, as sentences."""
    wheels, supported = _wheels(folder), set(sys_tags())
    problems = [
        f"{path.name} is not for this Python and platform"
        for _, path in wheels.values()
        if not supported & set(parse_tag("-".join(path.name[:-4].split("-")[-3:])))
    ]
    pending = [(Requirement(line), "pyproject.toml / tools/gpu_wheels.txt") for line in roots()]
    seen: set[str] = set()
    while pending:
        requirement, needed_by = pending.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(requirement.name)
        key = f"{name}{requirement.specifier}"
        if key in seen:
            continue
        seen.add(key)
        if name in wheels and requirement.specifier.contains(wheels[name][0], prereleases=True):
            pending += [
                (Requirement(line), wheels[name][1].name) for line in _requires(wheels[name][1])
            ]
            continue
        try:
            if requirement.specifier.contains(metadata.version(name), prereleases=True):
                continue
            have = f"installed {metadata.version(name)}"
        except metadata.PackageNotFoundError:
            have = f"wheel {wheels[name][0]}" if name in wheels else "no wheel"
        problems.append(
            f"{requirement.name}{requirement.specifier or ''} ({have}; needed by {needed_by})"
        )
    return problems


def main() -> None:
    command, *rest = sys.argv[1:] or ["help"]
    if command == "roots":
        print("\n".join(roots()))
    elif command == "pins":
        print("\n".join(pins(Path(rest[0]))))
    elif command == "check":
        folder = Path(rest[0])
        problems = missing(folder)
        if problems:
            where = folder if folder.is_dir() else f"{folder} (which does not exist)"
            print(f"The wheel folder {where} lacks {len(problems)} of what the GPU check needs:")
            print("\n".join(f"  - {problem}" for problem in sorted(problems)))
            print(
                "Fetch them on a machine with package access, for this Python "
                f"({sys.version_info.major}.{sys.version_info.minor}):\n"
                f"  bash tools/gpu_wheels.sh {folder} --python-version "
                f"{sys.version_info.major}.{sys.version_info.minor}\n"
                "and carry the folder with the clone."
            )
            sys.exit(1)
        print(f"wheels: {folder} holds everything the GPU check needs")
    else:
        print(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
