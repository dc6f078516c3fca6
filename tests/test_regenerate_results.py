"""tools/regenerate_results.py: every wall time docs/results.md states is one whole run with the
load it ran under, and the page says how to read a time taken on a shared machine."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))  # the tools import their shared machine module
spec = importlib.util.spec_from_file_location(
    "regenerate_results", ROOT / "tools" / "regenerate_results.py"
)
regenerate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(regenerate)


def wall_time_cells(page: str) -> list[str]:
    """The last cell of each row of the tables whose last column is "wall time"."""
    cells, in_table = [], False
    for line in page.splitlines():
        last = line.split("|")[-2].strip() if line.startswith("|") else None
        if last == "wall time":
            in_table = True
        elif last is None:
            in_table = False
        elif in_table and not last.startswith("---"):
            cells.append(last)
    return cells


def test_every_wall_time_on_the_page_states_its_load():
    page = (ROOT / "docs" / "results.md").read_text()
    cells = wall_time_cells(page)
    assert len(cells) == 20  # 9 bottleneck runs, 4 with FSQ and LFQ, 7 on pixels
    assert all(regenerate.WALL_TIME.fullmatch(cell) for cell in cells), cells
    assert regenerate.MACHINE.search(page)


def test_an_interrupted_run_starts_over_so_its_wall_time_is_a_whole_run(tmp_path):
    runs = {"done": {"state": "done"}, "cut": {"state": "running"}}
    (tmp_path / "status.json").write_text(json.dumps({"runs": runs}))
    for name in runs:
        (tmp_path / "runs" / name).mkdir(parents=True)
    (tmp_path / regenerate.CLASSIFIERS).write_text("{}")

    regenerate.discard_unfinished(tmp_path)

    assert (tmp_path / "runs" / "done").is_dir()
    assert not (tmp_path / "runs" / "cut").exists()
    assert not (tmp_path / regenerate.CLASSIFIERS).exists()  # computed on the discarded run


def test_the_page_names_the_loads_and_how_to_scale_a_time_taken_under_load():
    cores = regenerate.cores()
    page = "Wall times measured on somewhere.\n| `quickstart.yaml` | {} |\n| `omp.yaml` | {} |\n"
    loaded = regenerate.with_machine(
        page.format(f"95 s at load {cores + 7.3:.1f}", f"195 s at load {cores + 1:.1f}")
    )
    assert f"at loads from {cores + 1:.1f} to {cores + 7.3:.1f}." in loaded
    assert f"roughly the wall time x {cores}/L" in loaded
    idle = regenerate.with_machine(page.format("60 s at load 0.2", "90 s at load 0.4"))
    assert "at loads from 0.2 to 0.4." in idle
    assert "shared" not in idle


def test_a_resumed_regeneration_keeps_the_loads_sampled_before(tmp_path):
    log = tmp_path / "load-samples.txt"
    log.write_text("100.0 3.00\n200.0 5.00\n")  # (time, 1-minute load) of an earlier process
    with regenerate.LoadSampler(every=60, log=log) as sampler:
        assert sampler.mean(50, 250) == 4.0


def test_a_regenerated_page_keeps_the_prior_comparison_that_compare_priors_wrote():
    start, end = regenerate.KEPT[0]
    template = regenerate.TEMPLATE.read_text()
    assert start in template and end in template
    old = f"old\n{start}\n| VQ | 0.243 |\n{end}\nold tail\n"
    new = f"new\n{start}\nplaceholder\n{end}\nnew tail\n"
    assert regenerate.kept_sections(new, old) == f"new\n{start}\n| VQ | 0.243 |\n{end}\nnew tail\n"
    assert regenerate.kept_sections(new, "a page without the section") == new
