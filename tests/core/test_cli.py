"""The `laser` command as a user meets it: clear errors without tracebacks, a schema for
editors, a plugin skeleton that installs and works, and eval on a finished run."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import jsonschema
import pytest

from tests.helpers import TINY_RECIPE, run_laser

COMMANDS = (
    *("plugins", "validate", "schema", "run", "eval", "sweep", "compare", "weights", "priors"),
    *("compress", "decompress", "finetune-quantized", "rd", "export", "analyze", "task"),
    "import",
    "new-plugin",
)


def test_help_lists_every_command():
    result = run_laser("--help")
    assert result.returncode == 0
    listed = re.findall(r"^    (\S+)", result.stdout.split("COMMAND\n", 1)[1], re.MULTILINE)
    assert tuple(listed) == COMMANDS


def test_plugins_lists_built_ins_by_kind_with_provider():
    result = run_laser("plugins")
    assert result.returncode == 0
    bottlenecks = result.stdout.split("bottlenecks:")[1].split("decoders:")[0]
    assert "vq " in bottlenecks and "(laser " in bottlenecks


def test_validate_prints_the_resolved_recipe(write_recipe):
    result = run_laser("validate", str(write_recipe(TINY_RECIPE)), "train.lr=0.01")
    assert result.returncode == 0, result.stderr
    assert "lr: 0.01" in result.stdout and "grad_accum: 1" in result.stdout


def test_a_recipe_typo_is_one_clear_message_and_exit_code_2(write_recipe):
    path = write_recipe(TINY_RECIPE.replace("codebook_size", "codebok_size"))
    result = run_laser("run", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{path.resolve()}:4: bottleneck.codebok_size" in result.stderr
    assert "did you mean 'codebook_size'?" in result.stderr


def test_schema_command_writes_a_json_schema_of_the_installed_plugins(tmp_path):
    out = tmp_path / "laser-recipe.schema.json"
    assert run_laser("schema", "-o", str(out)).returncode == 0
    schema = json.loads(out.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert "vq" in schema["properties"]["bottleneck"]["properties"]["name"]["enum"]


@pytest.mark.slow
def test_new_plugin_installs_registers_builds_and_uninstalls_cleanly(tmp_path, write_recipe):
    assert run_laser("new-plugin", "tiny-fsq", "-o", str(tmp_path)).returncode == 0
    package = tmp_path / "laser-tiny-fsq"
    pip = [sys.executable, "-m", "pip", "--quiet"]
    install = [*pip, "install", "--no-deps", "--no-build-isolation", str(package)]
    subprocess.run(install, check=True, capture_output=True, timeout=300)
    try:
        listed = run_laser("plugins").stdout
        assert "tiny-fsq" in listed
        # The registered class's docstring gives the summary `laser plugins` prints.
        assert "Finite scalar quantizer: each latent channel rounded" in listed
        recipe = write_recipe(
            TINY_RECIPE.replace("{name: vq, codebook_size: 16}", "{name: tiny-fsq, levels: 5}")
        )
        assert run_laser("validate", str(recipe)).returncode == 0
        build = (
            "from laser_core import build_component, BuildContext\n"
            "b = build_component('bottlenecks', {'name': 'tiny-fsq', 'levels': 5},\n"
            "                    BuildContext(latent_dim=3))\n"
            "print(b.code_spec().alphabet_sizes)"
        )
        built = subprocess.run([sys.executable, "-c", build], capture_output=True, text=True)
        assert built.stdout.strip() == "[5, 5, 5]", built.stderr
        tests = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                str(package / "tests"),
            ],
            capture_output=True,
            text=True,
            cwd=package,
            timeout=300,
        )
        assert tests.returncode == 0, tests.stdout[-2000:]
    finally:
        subprocess.run([*pip, "uninstall", "-y", "laser-tiny-fsq"], check=True, timeout=300)
    after = run_laser("plugins")
    assert after.returncode == 0 and "tiny-fsq" not in after.stdout


@pytest.mark.slow
def test_run_then_eval_recomputes_the_final_metrics(write_recipe, tmp_path):
    run_dir = tmp_path / "run"
    recipe = str(write_recipe(TINY_RECIPE))
    # an override after an option still counts
    trained = run_laser("run", recipe, "--run-dir", str(run_dir), "data.val_patches=24")
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert "validation before training: mse" in trained.stdout
    assert "(8 examples)" in trained.stdout.split("validation after training: mse")[1]
    assert "val_patches: 24" in (run_dir / "recipe.yaml").read_text()
    final = json.loads((run_dir / "metrics.json").read_text())
    assert final["val_examples"] == 8  # train.eval_batches=1 batch of 8
    evaluated = run_laser("eval", str(run_dir))
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    report = json.loads(evaluated.stdout)
    assert report["metrics"] == {k: v for k, v in final.items() if k != "step"}
    assert (report["examples"], report["split_examples"], report["step"]) == (8, 24, 6)
    assert report["dataset"]["name"] == "photo-patches" and report["split"] == "val"
    assert f"{run_dir / 'model.safetensors'} (step 6)" in evaluated.stderr
    whole = run_laser("eval", str(run_dir), "--whole-split")
    assert whole.returncode == 0, whole.stderr[-2000:]
    assert json.loads(whole.stdout)["metrics"]["val_examples"] == 24
    again = run_laser("run", recipe, "--run-dir", str(run_dir))
    assert again.returncode == 1 and "--resume" in again.stderr


def test_an_unknown_option_is_still_refused(write_recipe):
    result = run_laser("validate", str(write_recipe(TINY_RECIPE)), "--bogus", "train.lr=0.01")
    assert result.returncode == 2 and "unrecognized arguments: --bogus" in result.stderr
