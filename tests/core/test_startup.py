"""``import laser_core`` and the CLI's parser import no torch, so ``laser --help`` answers at
once; the public names still all resolve, lazily (tools/bench_startup.py times it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import laser_core
from laser_core.cli.main import main
from tests.helpers import TINY_RECIPE

HEAVY = ("torch", "accelerate", "numpy", "pydantic")


def test_import_and_help_import_no_torch():
    code = """
import sys
import laser_core
from laser_core.cli.main import main
for argv in (["--help"], ["plugins", "--help"], ["run", "--help"]):
    try:
        main(argv)
    except SystemExit:
        pass
print(" ".join(name for name in sys.argv[1:] if name in sys.modules))
"""
    done = subprocess.run(
        [sys.executable, "-c", code, *HEAVY], capture_output=True, text=True, check=True
    )
    assert "usage: laser run" in done.stdout
    assert done.stdout.splitlines()[-1] == ""  # none of HEAVY was imported


def test_validate_imports_neither_accelerate_nor_the_packages_the_photos_ship_in():
    """Validating the quickstart needs torch but none of these, which took about a second of
    ``laser validate recipes/quickstart.yaml`` beyond importing torch (tools/bench_startup.py)."""
    code = """
import sys
from laser_core.cli.main import main
main(["validate", "recipes/quickstart.yaml"])
print(" ".join(name for name in sys.argv[1:] if name in sys.modules))
"""
    unneeded = ("accelerate", "skimage", "sklearn", "imageio", "scipy")
    done = subprocess.run(
        [sys.executable, "-c", code, *unneeded],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.splitlines()[-1] == ""


@pytest.mark.slow
def test_run_imports_no_library_for_what_the_recipe_did_not_ask_for(tmp_path):
    """A run writes its reconstruction grids with PIL: torchvision took a second of a
    150-step quickstart run (tools/bench_run_overhead.py), LPIPS and the trackers more."""
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(TINY_RECIPE)
    code = """
import sys
from laser_core.cli.main import main
assert main(["run", sys.argv[1], "train.steps=1", "--run-dir", sys.argv[2]]) == 0
print(" ".join(name for name in sys.argv[3:] if name in sys.modules))
"""
    unneeded = ("torchvision", "lpips", "tensorboard", "matplotlib", "datasets", "sklearn")
    done = subprocess.run(
        [sys.executable, "-c", code, str(recipe), str(tmp_path / "run"), *unneeded],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.splitlines()[-1] == ""


def test_every_public_name_resolves_and_is_listed():
    for name in laser_core.__all__:
        assert getattr(laser_core, name) is not None
    assert set(laser_core.__all__) <= set(dir(laser_core))
    assert laser_core.load_run.__module__ == "laser_core.runs.load"


def test_the_imports_type_checkers_read_are_the_public_names():
    assert set(laser_core._sources()) == set(laser_core.__all__)


def test_a_name_that_is_not_public_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'train'"):
        laser_core.train  # noqa: B018


def test_laser_lets_torch_threads_sleep_unless_the_environment_says_otherwise(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    with pytest.raises(SystemExit):
        main(["--help"])
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    with pytest.raises(SystemExit):
        main(["--help"])
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
