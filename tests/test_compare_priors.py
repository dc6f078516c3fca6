"""tools/compare_priors.py: the answer it writes says what the numbers say, whichever way they
fall, and the table names every size it tried with the chosen one marked."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))  # the tools import their shared doc_section
TOOL = ROOT / "tools" / "compare_priors.py"
spec = importlib.util.spec_from_file_location("compare_priors", TOOL)
compare = importlib.util.module_from_spec(spec)
sys.modules["compare_priors"] = compare  # dataclasses look their module up there
spec.loader.exec_module(compare)

FAMILIES = {family.name: family for family in compare.DATASETS["photo"]}


def row(name: str, psnr: float, counts_bpp: float, learned_bpp: float) -> compare.Row:
    """A family's row on 1024-pixel images, 64 tokens each."""
    family = FAMILIES[name]
    run = family.candidates[0][0]

    def bits(bpp: float) -> dict[str, float]:
        return {"bits_per_image": 1024 * bpp, "bits_per_pixel": bpp, "bits_per_token": 16 * bpp}

    tried = [(run, psnr), ("other", psnr + 1.0)]
    learned = bits(learned_bpp)
    return compare.Row(
        family, tried, bits(counts_bpp), {600: learned}, 600, learned, seconds=60.0, load=9.5
    )


def test_sparse_codes_needing_more_bits_read_as_more_with_every_ratio():
    rows = [
        row("VQ", 24.4, 0.50, 0.25),
        row("RQ", 24.6, 1.00, 0.50),
        row("FSQ", 24.2, 0.50, 0.25),
        row("OMP", 24.5, 2.00, 1.00),
        row("K-SVD", 24.3, 2.00, 1.50),
    ]
    text = compare.answer("photo", rows)
    assert "within 0.20 dB of VQ's 24.40 dB" in text
    assert "**2.0x to 6.0x**" in text  # OMP/RQ 1.0 / 0.5 up to K-SVD/VQ 1.5 / 0.25
    assert "(more bits;" in text
    assert "OMP/VQ 4.00x" in text and "K-SVD/RQ 3.00x" in text
    assert "counts prior 2.0x to 4.0x" in text


def test_sparse_codes_needing_fewer_bits_read_as_fewer():
    rows = [row("VQ", 24.4, 1.0, 0.8), row("OMP", 24.4, 0.5, 0.4)]
    assert "(fewer bits;" in compare.answer("digits", rows)


def test_the_table_marks_the_chosen_size_and_states_the_prior_time_with_its_load():
    rows = [row("VQ", 24.4, 0.5, 0.25), row("OMP", 24.9, 2.0, 1.0)]
    lines = compare.table(rows).splitlines()
    assert all(line.count("|") == lines[0].count("|") for line in lines)
    omp = lines[-1]
    assert f"**`{rows[-1].run}`** (24.90), `other` (25.90)" in omp
    assert "| +0.50 | 64 |" in omp
    assert "| 1024.0 | 1.000 | -50% |" in omp
    assert omp.endswith("| 60 s at load 9.5 |")


def test_an_unfinished_family_is_marked_and_named_in_the_answer():
    unfinished = compare.Row(FAMILIES["K-SVD"], [("ksvd-s2", 25.8)])
    rows = [row("VQ", 24.4, 0.5, 0.25), row("OMP", 24.5, 2.0, 1.0), unfinished]
    last = compare.table(rows).splitlines()[-1]
    assert last.startswith("| K-SVD | **`ksvd-s2`** (25.80) | +1.40 | not finished |")
    text = compare.answer("photo", rows)
    assert "(K-SVD not finished)" in text and "**4.0x to 4.0x**" in text
    assert "not measured yet" in compare.answer("photo", [rows[0], unfinished])
