"""`laser priors`, `compress`, `decompress` and `rd` as a user runs them."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from laser_core.campaigns.collect import collect
from laser_core.cli.main import main
from laser_core.coding import container
from laser_core.coding.codec import Codec
from laser_core.coding.rd import QUALITIES, labels, read_rows
from laser_core.data.images import from_pixels, read_pixels, to_pixels
from tests.compression.photos import photo_pixels
from tests.compression.reference import model_reconstruction

pytestmark = pytest.mark.slow  # trains tiny models (conftest.py)


def write_photos(folder, size=(40, 52)):
    """Two real photographs' crops as PNG files in ``folder``."""
    folder.mkdir()
    paths = []
    for name in ("coffee", "rocket"):
        path = folder / f"{name}.png"
        Image.fromarray(photo_pixels(name, *size)).save(path)
        paths.append(path)
    return paths


def test_compress_then_decompress_writes_each_reconstruction(trained_run, tmp_path, capsys):
    run = trained_run("vq")
    images = write_photos(tmp_path / "photos")
    lsr, out = tmp_path / "two.lsr", tmp_path / "out.png"
    assert main(["compress", str(run), *map(str, images), "-o", str(lsr)]) == 0
    assert f"{lsr.stat().st_size} bytes" in capsys.readouterr().out
    assert main(["decompress", str(run), str(lsr), "-o", str(out)]) == 0

    codec = Codec.open(run)
    for index, image in enumerate(images):
        expected = to_pixels(model_reconstruction(codec, from_pixels(read_pixels(image, 3))))
        written = read_pixels(tmp_path / f"out-{index}.png", 3)
        assert np.array_equal(written, expected)


def test_decompress_with_another_run_is_one_clear_error(trained_run, tmp_path, capsys):
    (image,) = write_photos(tmp_path / "photos")[:1]
    lsr = tmp_path / "one.lsr"
    assert main(["compress", str(trained_run("vq")), str(image), "-o", str(lsr)]) == 0
    assert main(["decompress", str(trained_run("rq")), str(lsr), "-o", "x.png"]) == 1
    assert "was compressed by another model" in capsys.readouterr().err


def test_finetune_quantized_leaves_a_finished_run_that_compare_lists(trained_run, tmp_path):
    tuned = tmp_path / "tuned"
    assert (
        main(["finetune-quantized", str(trained_run("omp")), "-o", str(tuned), "--steps", "4"]) == 0
    )
    final = json.loads((tuned / "metrics.json").read_text())
    assert final["step"] == 4 and final["val_examples"] == 8 and final["mse"] > 0
    records = [json.loads(line) for line in (tuned / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r["split"]) for r in records] == [(0, "val"), (4, "train"), (4, "val")]
    (record,) = collect([tuned])
    assert record.state == "done" and record.final == final


def test_finetune_quantized_of_a_decoder_without_weights_says_so(trained_run, tmp_path, capsys):
    run = trained_run("pixels-omp")
    assert main(["finetune-quantized", str(run), "-o", str(tmp_path / "tuned")]) == 1
    err = capsys.readouterr().err
    assert "('identity') has no weights, so there is nothing to fine-tune" in err
    assert "bug" not in err


def test_priors_reports_what_it_counted(trained_run, capsys):
    assert main(["priors", str(trained_run("vq"))]) == 0
    assert "1 depth slot(s) counted on 64 training images" in capsys.readouterr().out


def test_rd_compares_runs_with_jpeg_and_webp(trained_run, tmp_path, capsys):
    photos = tmp_path / "photos"
    write_photos(photos, size=(42, 53))  # cropped to whole 16-pixel tiles: 32 x 48
    runs = [trained_run("vq"), trained_run("hierarchical")]
    out = tmp_path / "rd"
    assert main(["rd", *map(str, runs), "--images", str(photos), "-o", str(out)]) == 0
    with open(out / "rd.csv") as stream:
        rows = list(csv.DictReader(stream))
    assert {row["codec"] for row in rows} == {*labels(runs), "jpeg", "webp"}
    assert len(rows) == 2 * (2 + 2 * len(QUALITIES))  # images x (runs + JPEG and WebP qualities)
    assert {(row["height"], row["width"]) for row in rows} == {("32", "48")}
    laser = [row for row in rows if row["bpp_nominal"]]
    assert len(laser) == 4
    # bpp is the .lsr file's: each image, cropped as rd crops it, compressed alone
    fixed = container._HEADER.size + container._IMAGE.size + container._CRC.size
    for row in laser:
        run = runs[labels(runs).index(row["codec"])]
        cropped = tmp_path / "cropped.png"
        pixels = read_pixels(photos / row["image"], 3)
        Image.fromarray(pixels[5:37, 2:50]).save(cropped)  # centre 32 x 48 of 42 x 53
        lsr = tmp_path / "one.lsr"
        assert main(["compress", str(run), str(cropped), "-o", str(lsr)]) == 0
        size = lsr.stat().st_size
        assert float(row["bpp"]) == 8 * size / (32 * 48)
        # the range coder spends the cross-entropy, plus the container and a few bytes
        payload, ideal = size - fixed, float(row["bpp_cross_entropy"]) * 32 * 48 / 8
        assert ideal <= payload <= 1.002 * ideal + 8, (payload, ideal)
    assert Image.open(out / "rd.png").format == "PNG"
    assert "jpeg" in capsys.readouterr().out


def test_rd_draws_a_sweep_as_one_curve_with_its_bjontegaard_deltas(
    trained_run, tmp_path, capsys, caplog
):
    """A sweep's finished runs are one codec's points (the unfinished one is left out) with
    a row of Bjøntegaard deltas against JPEG and WebP each (their numbers: test_rd_bd.py); a
    lone run is a point, for which bd.csv says why it has none."""
    photos, sweep = tmp_path / "photos", tmp_path / "sweep"
    write_photos(photos, size=(32, 48))
    for name, run in (("small", "vq"), ("large", "rq")):
        shutil.copytree(trained_run(run), sweep / "runs" / name)
    (sweep / "runs" / "unfinished").mkdir()
    states = {name: {"state": "done"} for name in ("small", "large")} | {
        "unfinished": {"state": "running"}
    }
    (sweep / "status.json").write_text(json.dumps({"runs": states}))
    out = tmp_path / "rd"
    lone = trained_run("vq")
    assert main(["rd", str(sweep), str(lone), "--images", str(photos), "-o", str(out)]) == 0
    rows = read_rows(out / "rd.csv")
    assert sorted({r["setting"] for r in rows if r["codec"] == "sweep"}) == ["large", "small"]
    with open(out / "bd.csv") as stream:
        deltas = {(r["codec"], r["anchor"]): r for r in csv.DictReader(stream)}
    assert set(deltas) == {(c, a) for c in ("sweep", lone.name) for a in ("jpeg", "webp")}
    assert {deltas[("sweep", a)]["points"] for a in ("jpeg", "webp")} == {"2"}
    assert "one run is a point" in deltas[(lone.name, "jpeg")]["note"]
    assert "sweep vs jpeg" in capsys.readouterr().out
    assert "unfinished left out: it has not finished training" in caplog.text
