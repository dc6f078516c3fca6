"""No traceback reaches a user: LaserErrors print as one message, anything else as a short
note naming the command (traceback behind --debug or LASER_DEBUG=1), and a closed pipe ends
the command quietly."""

from __future__ import annotations

import errno
import resource
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import torch
from pydantic import ConfigDict
from safetensors.torch import save_file

from laser_core import ComponentConfig, hookimpl
from laser_core.cli.main import main
from laser_core.errors import world_problem, writing
from laser_core.plugin import registry as registry_module
from laser_core.plugin.registry import Provider, Registry
from tests.helpers import TINY_RECIPE


class UnexportableConfig(ComponentConfig):
    """A config pydantic cannot describe in JSON Schema: `laser schema` fails inside pydantic."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
    callback: Callable = print


class UnexportablePlugin:
    @hookimpl
    def laser_register_encoders(self, register):
        register("odd", lambda config, context: None, config=UnexportableConfig)


@pytest.fixture
def odd_registry(monkeypatch):
    registry = Registry()
    registry.add_plugin(UnexportablePlugin(), Provider("odd", "laser-odd", "1.0"))
    monkeypatch.setattr(registry_module, "_default", registry)
    monkeypatch.delenv("LASER_DEBUG", raising=False)
    return registry


def test_an_unexpected_error_is_a_short_message_naming_the_command(odd_registry, capsys):
    assert main(["schema"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: laser schema failed: PydanticInvalidForJsonSchema: ")
    assert "--debug" in err and "LASER_DEBUG=1" in err and "Traceback" not in err


def test_debug_shows_the_traceback(odd_registry, monkeypatch):
    with pytest.raises(Exception, match="JsonSchema"):
        main(["--debug", "schema"])
    monkeypatch.setenv("LASER_DEBUG", "1")
    with pytest.raises(Exception, match="JsonSchema"):
        main(["schema"])


def test_a_laser_error_is_one_line_and_its_exit_code(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("LASER_DEBUG", raising=False)
    assert main(["eval", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "is not a run directory: recipe.yaml is missing" in err
    assert "Traceback" not in err


def test_a_closed_pipe_ends_the_command_quietly():
    """`laser plugins | head -1`: the reader leaves before laser writes."""
    process = subprocess.Popen(
        [sys.executable, "-m", "laser_core.cli", "plugins"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    process.stdout.close()
    err = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141 and err == ""


@contextmanager
def file_size_limit(size: int) -> Iterator[None]:
    """What `ulimit -f` does: writing past ``size`` bytes fails with EFBIG (Python ignores
    SIGXFSZ), as writing to a full disk fails with ENOSPC."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def test_a_file_size_limit_during_a_run_names_the_file_not_a_bug(write_recipe, tmp_path, capsys):
    recipe = write_recipe(TINY_RECIPE)
    with file_size_limit(1000):
        assert main(["run", str(recipe), "--run-dir", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert "error: laser run: a file size limit was reached (ulimit -f" in err
    assert f"writing {tmp_path / 'run' / 'recipe.yaml'}" in err and "bug" not in err


def test_safetensors_running_out_of_room_is_told_as_such(tmp_path):
    path = tmp_path / "weights.safetensors"
    with file_size_limit(1000), pytest.raises(Exception) as caught, writing(path):
        save_file({"weight": torch.zeros(1000)}, str(path))
    problem = world_problem(caught.value)
    assert problem.startswith("a file size limit was reached (ulimit -f") and str(path) in problem


def test_a_directory_where_a_file_goes_and_a_refused_permission_are_told(tmp_path, capsys):
    assert main(["schema", "-o", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"a directory stands where a file is expected writing {tmp_path}" in err
    assert "bug" not in err
    denied = PermissionError(errno.EACCES, "Permission denied", "/srv/runs/x/recipe.yaml")
    assert world_problem(denied).startswith("no permission at /srv/runs/x/recipe.yaml; ")
    assert world_problem(ValueError("optimizer got an empty parameter list")) is None
