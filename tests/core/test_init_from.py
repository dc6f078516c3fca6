"""Fine-tuning: `train.init_from` starts from another run's weights, `train.freeze` keeps parts
fixed, and whatever does not fit stops the run before it trains."""

from __future__ import annotations

import pytest
from safetensors.torch import load_file

from laser_core.cli import main
from tests.helpers import TINY_RECIPE


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("source")
    (folder / "recipe.yaml").write_text(TINY_RECIPE)
    assert main(["run", str(folder / "recipe.yaml"), "--run-dir", str(folder / "run")]) == 0
    return folder / "run"


def _weights(run_dir):
    return load_file(str(run_dir / "model.safetensors"))


def _run(tmp_path, source_run, *overrides, strict=True):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(TINY_RECIPE)
    init = (
        f"train.init_from={source_run}"
        if strict
        else (f"train.init_from={{run: {source_run}, strict: false}}")
    )
    argv = ["run", str(recipe), init, *overrides]
    return main([*argv, "--run-dir", str(tmp_path / "run")])


def test_a_run_starts_from_another_runs_weights(tmp_path, source_run):
    assert _run(tmp_path, source_run, "train.steps=0") == 0
    source, started = _weights(source_run), _weights(tmp_path / "run")
    assert source.keys() == started.keys()
    assert all((source[k] == started[k]).all() for k in source)


def test_a_new_bottleneck_trains_between_a_frozen_encoder_and_decoder(tmp_path, source_run):
    new_bottleneck = "bottleneck={name: omp, atoms: 16, sparsity: 2}"
    code = _run(
        tmp_path,
        source_run,
        new_bottleneck,
        "train.freeze=[encoder, decoder]",
        "train.steps=3",
        strict=False,
    )
    assert code == 0
    source, tuned = _weights(source_run), _weights(tmp_path / "run")
    fixed = [k for k in tuned if k.startswith(("encoder.", "decoder."))]
    assert fixed and all((tuned[k] == source[k]).all() for k in fixed)
    assert "bottleneck.dictionary" in tuned


def test_a_frozen_ema_codebook_stays_as_it_was(tmp_path, source_run):
    assert _run(tmp_path, source_run, "train.freeze=[bottleneck]", "train.steps=3") == 0
    source, tuned = _weights(source_run), _weights(tmp_path / "run")
    assert (tuned["bottleneck.codebook.weight"] == source["bottleneck.codebook.weight"]).all()
    assert not (tuned["encoder.net.0.weight"] == source["encoder.net.0.weight"]).all()


def test_weights_that_do_not_fit_stop_the_run_before_training(tmp_path, source_run, capsys):
    assert _run(tmp_path, source_run, "bottleneck.codebook_size=32") != 0
    error = capsys.readouterr().err
    assert "bottleneck.codebook.weight (16, 4) -> (32, 4)" in error
    assert "strict: false" in error
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_a_missing_source_run_is_named(tmp_path, capsys):
    assert _run(tmp_path, tmp_path / "nowhere") != 0
    assert "nowhere/model.safetensors does not exist" in capsys.readouterr().err
