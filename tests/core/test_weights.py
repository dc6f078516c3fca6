"""Weight files are found in the torch cache by their standard names and imported only when
their hash matches."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from laser_core.assembly.weights import WeightFile, cache_dir, import_file, known_weights
from laser_core.cli.main import main
from laser_core.errors import LaserError


@pytest.fixture(autouse=True)
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch"


def test_known_files_are_the_names_torchvision_and_torch_fidelity_download():
    names = {w.name: w.sha256_prefix for w in known_weights().values()}
    assert names == {
        "alexnet-owt-7be5be79.pth": "7be5be79",
        "vgg16-397923af.pth": "397923af",
        "squeezenet1_1-b8a52dc0.pth": "b8a52dc0",
        "weights-inception-2015-12-05-6726825d.pth": "6726825d",
    }


def test_import_copies_a_file_whose_hash_matches_under_its_standard_name(
    tmp_path: Path, torch_home: Path
):
    source = tmp_path / "downloaded (1).bin"
    source.write_bytes(b"pretend these are weights")
    prefix = hashlib.sha256(source.read_bytes()).hexdigest()[:8]
    known = {"demo": WeightFile(f"https://example.invalid/demo-{prefix}.pth", "a test")}
    target = import_file(source, known)
    assert target == torch_home / "hub" / "checkpoints" / f"demo-{prefix}.pth"
    assert target.read_bytes() == source.read_bytes()


def test_import_refuses_a_file_whose_hash_matches_nothing(tmp_path: Path, capsys):
    source = tmp_path / "alexnet-owt-7be5be79.pth"
    source.write_bytes(b"a truncated download")
    assert main(["weights", "import", str(source)]) == 1
    error = capsys.readouterr().err
    assert hashlib.sha256(b"a truncated download").hexdigest() in error
    assert "alexnet-owt-7be5be79.pth (sha256 7be5be79...)" in error
    assert not cache_dir().exists()


def test_weights_lists_each_file_as_cached_or_missing(capsys):
    cache_dir().mkdir(parents=True)
    (cache_dir() / "vgg16-397923af.pth").write_bytes(b"")
    assert main(["weights"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"cache: {cache_dir()}"
    status = {line.split()[0]: line.split()[1] for line in lines[1:]}
    assert status["vgg16-397923af.pth"] == "cached"
    assert status["alexnet-owt-7be5be79.pth"] == "missing"


def test_import_of_a_missing_path_is_one_clear_error(tmp_path: Path):
    with pytest.raises(LaserError, match="is not a file"):
        import_file(tmp_path / "nothing.pth")
