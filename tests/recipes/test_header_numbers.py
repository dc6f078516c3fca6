"""Every PSNR a recipe's header states is what docs/results.md records, and docs/results.md is
generated from runs by tools/regenerate_results.py. A recipe's own "A -> B dB" must match its
row (the row whose first cell names the recipe file); every other dB figure in the header
must appear in the page. After a regeneration, a failure here names the header to update.

Run alone with ``pytest -m docs_numbers``."""

from __future__ import annotations

import re

import pytest

from tests.helpers import RECIPES, REPO, shipped_recipes

RESULTS = (REPO / "docs" / "results.md").read_text()
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
