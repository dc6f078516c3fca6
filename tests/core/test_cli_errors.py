"""No traceback reaches a user: LaserErrors print as one message, anything else as a short
note naming the command (traceback behind --debug or LASER_DEBUG=1), and a closed pipe ends
the command quietly."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest
from pydantic import ConfigDict

from laser_core import ComponentConfig, hookimpl
from laser_core.cli.main import main
from laser_core.plugin import registry as registry_module
from laser_core.plugin.registry import Provider, Registry


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
