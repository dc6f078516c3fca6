"""Every PSNR a recipe's header states is what docs/results.md records, and docs/results.md is
generated from runs by tools/regenerate_results.py. A recipe's own "A -> B dB" must match its
row (the row whose first cell names the recipe file); every other dB figure in the header
must appear in the page. After a regeneration, a failure here names the header to update.
A time a header or the README states is the phrase tools/regenerate_results.py writes from
the page's wall time of that recipe, and no other.

Run alone with ``pytest -m docs_numbers``."""

from __future__ import annotations

import importlib.util
import re
import sys

import pytest

from tests.helpers import RECIPES, REPO, shipped_recipes

RESULTS = (REPO / "docs" / "results.md").read_text()
sys.path.insert(0, str(REPO / "tools"))  # the tools import their shared modules
spec = importlib.util.spec_from_file_location(
    "regenerate_results", REPO / "tools" / "regenerate_results.py"
)
regenerate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(regenerate)
TIME_WORDS = re.compile(r"\b(?:seconds?|minutes?|hours?)\b|\b\d+ s\b", re.IGNORECASE)
pytestmark = pytest.mark.docs_numbers
OWN = re.compile(r"(\d+\.\d) -> (\d+\.\d) dB")
FIGURE = re.compile(r"(\d+\.\d)(?=[^.\d]*?dB)")


def header(path) -> str:
    lines = path.read_text().splitlines()
    return "\n".join(line.lstrip("# ") for line in lines if line.startswith("#"))


def row_of(name: str) -> str | None:
    for line in RESULTS.splitlines():
        first = line.split("|")[1].strip() if line.startswith("|") else ""
        if first == f"`{name}`" or first.startswith(f"`{name}`:"):
            return line
    return None


CLAIMS = [p for p in shipped_recipes() if FIGURE.search(header(p))]


def test_recipes_state_numbers():
    assert len(CLAIMS) >= 8  # the test below would pass vacuously otherwise


@pytest.mark.parametrize("path", CLAIMS, ids=lambda p: str(p.relative_to(RECIPES)))
def test_header_numbers_match_docs_results(path):
    text = " ".join(header(path).split())
    name = str(path.relative_to(RECIPES))
    own = OWN.search(text)
    if own:
        row = row_of(name)
        assert row is not None, f"docs/results.md has no row for `{name}`"
        stated = f"{own.group(1)} -> {own.group(2)} dB"
        assert stated in row, f"{name} states {stated}; docs/results.md records: {row}"
    figures = set(FIGURE.findall(text))
    missing = sorted(
        f for f in figures if not re.search(rf"(?<![\d.]){re.escape(f)}(?!\d)", RESULTS)
    )
    assert not missing, f"{name} states {missing} dB, which docs/results.md does not record"


def test_readme_and_headers_state_the_wall_times_docs_results_records():
    stale = sorted(str(path.relative_to(REPO)) for path in regenerate.stale_times(RESULTS))
    assert not stale, f"{stale} state times docs/results.md does not record; rerun the tool"


def test_headers_state_no_time_but_the_generated_one():
    stated = [
        f"{path.relative_to(RECIPES)}: {line}"
        for path in shipped_recipes()
        for line in header(path).splitlines()
        if TIME_WORDS.search(regenerate.STATED.sub("", line))
    ]
    assert not stated
