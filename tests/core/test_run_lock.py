"""A run directory is owned by one process: a second command writing into it fails at once,
naming the holder; a lock left by a killed process is taken over."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest

from laser_core.cli.main import main
from laser_core.rundir.lock import DirectoryLock, DirectoryLocked, lock_run_dir
from tests.helpers import REPO, TINY_RECIPE

HOLD = """
import sys, time
from laser_core.rundir.lock import DirectoryLock
DirectoryLock(sys.argv[1]).__enter__()
print("held", flush=True)
time.sleep(120)
"""


def test_a_second_run_or_resume_into_a_held_directory_fails_at_once(write_recipe, tmp_path, capsys):
    run_dir = tmp_path / "run"
    recipe = write_recipe(TINY_RECIPE)
    holder = f"process {os.getpid()} on {socket.gethostname()}"
    with DirectoryLock(run_dir):
        assert main(["run", str(recipe), "--run-dir", str(run_dir)]) == 1
        assert f"{run_dir} is in use by another LASER command: {holder}" in capsys.readouterr().err
        assert sorted(p.name for p in run_dir.iterdir()) == [".lock"]  # nothing written
        (run_dir / "recipe.yaml").write_text(recipe.read_text())
        assert main(["run", "--resume", str(run_dir)]) == 1
        assert holder in capsys.readouterr().err


def test_task_and_priors_refuse_a_run_another_command_holds(write_recipe, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert (
        main(["run", str(write_recipe(TINY_RECIPE)), "--run-dir", str(run_dir), "train.steps=0"])
        == 0
    )
    capsys.readouterr()
    with DirectoryLock(run_dir):
        for command in (["task", str(run_dir), "task.name=classify"], ["priors", str(run_dir)]):
            assert main(command) == 1
            assert f"{run_dir} is in use by another LASER command" in capsys.readouterr().err
    assert not (run_dir / "priors.safetensors").exists()


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path):
    holding = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, cwd=REPO
    )
    try:
        assert holding.stdout.readline() == b"held\n"
        with pytest.raises(DirectoryLocked, match=f"process {holding.pid} on "):
            DirectoryLock(tmp_path).__enter__()
    finally:
        holding.send_signal(signal.SIGKILL)
        holding.wait()
    with DirectoryLock(tmp_path):
        assert (tmp_path / ".lock").read_text().startswith(f"process {os.getpid()} on ")


def test_only_the_main_process_of_a_launch_takes_the_lock(tmp_path, monkeypatch):
    with DirectoryLock(tmp_path):
        monkeypatch.setenv("RANK", "1")
        with lock_run_dir(tmp_path):  # the launch's main process holds it
            pass
        monkeypatch.setenv("RANK", "0")
        with pytest.raises(DirectoryLocked):
            lock_run_dir(tmp_path).__enter__()
