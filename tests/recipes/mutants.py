"""Mutated copies of every shipped recipe, each with a verdict: is it clearly wrong?

The mutation classes are those of the reliability issue: encodings, extends shapes, overrides,
huge numbers, nesting, alias bombs, wrong domains, duplicate keys, unknown keys, wrong types,
missing blocks, YAML syntax and tags, plus valid variants that must keep passing. Each mutant
is a folder of files (the recipe, sometimes a local base) and overrides, validated in-process
by :func:`run` exactly as ``laser validate`` does. tests/recipes/test_fuzz_recipes.py asserts
on every mutant; tools/fuzz_recipes.py prints the table in docs/reliability.md.
"""

from __future__ import annotations

import copy
import signal
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from laser_core.assembly.build import check_recipe
from laser_core.errors import LaserError
from laser_core.recipes.model import load_recipe
from tests.helpers import shipped_recipes

REPO = Path(__file__).resolve().parents[2]
RECIPES = REPO / "recipes"
TIME_LIMIT_S = 2.0
ASSEMBLED_TIME_LIMIT_S = 30.0
"""For a mutant whose fault shows only once its components are built (a dataset included)."""

Verdict = Literal["wrong", "fine", "arguable"]
"""wrong: must be rejected; fine: must be accepted; arguable: either is right."""

CLASSES = (
    "encodings",
    "extends shapes",
    "overrides",
    "huge numbers",
    "nesting",
    "alias bombs",
    "wrong domains",
    "duplicate keys",
    "unknown keys",
    "wrong types",
    "missing blocks",
    "yaml syntax and tags",
    "valid variants",
)


@dataclass(frozen=True)
class Mutant:
    id: str
    kind: str  # one of CLASSES
    verdict: Verdict
    files: dict[str, bytes]  # recipe.yaml and any local base, written into one folder
    overrides: tuple[str, ...] = ()
    assembled: bool = False  # its fault shows only once the components are built and probed

    @property
    def time_limit(self) -> float:
        return ASSEMBLED_TIME_LIMIT_S if self.assembled else TIME_LIMIT_S

    def write(self, folder: Path) -> Path:
        for name, content in self.files.items():
            (folder / name).write_bytes(content)
        return folder / "recipe.yaml"


@dataclass
class Outcome:
    result: Literal["rejected", "accepted", "traceback", "hang"]
    seconds: float
    detail: str = field(default="", repr=False)


def validate(path: Path, overrides: tuple[str, ...], assembled: bool) -> None:
    """What `laser validate` runs: load and check the recipe, build its components on a probe
    batch (only for ``assembled`` mutants: it takes seconds), resolve it for printing."""
    recipe = load_recipe(path, overrides)
    if assembled:
        check_recipe(recipe)
    yaml.safe_dump(recipe.resolved(), sort_keys=False)


def run(mutant: Mutant, folder: Path) -> Outcome:
    """Validate ``mutant`` written into ``folder``; a LaserError is a clean rejection, any other
    exception a traceback a user would see, and more than TIME_LIMIT_S a hang."""
    path = mutant.write(folder)
    start = time.perf_counter()
    try:
        with _time_limit(mutant.time_limit):
            validate(path, mutant.overrides, mutant.assembled)
    except LaserError as error:
        return Outcome("rejected", time.perf_counter() - start, str(error))
    except _Hang:
        return Outcome("hang", time.perf_counter() - start)
    except Exception:
        return Outcome("traceback", time.perf_counter() - start, traceback.format_exc())
    return Outcome("accepted", time.perf_counter() - start)


class _Hang(BaseException):
    pass


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    def expire(signum: int, frame: Any) -> None:
        raise _Hang

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def shipped() -> list[Path]:
    """The shipped recipes that extend a base (every mutant class needs one): all but the
    self-contained tokenizer recipes, and no sweep files."""
    return [path for path in shipped_recipes() if "extends" in yaml.safe_load(path.read_text())]


def mutants() -> list[Mutant]:
    """Every mutant of every shipped recipe, in a stable order."""
    out: list[Mutant] = []
    for index, path in enumerate(shipped()):
        out += _of_recipe(path, index)
    return out


def _share(items: list, index: int, every: int) -> list:
    """One in ``every`` of ``items`` for recipe ``index``, rotating, so each item meets several
    recipes and the suite stays fast."""
    return [item for position, item in enumerate(items) if (position + index) % every == 0]


def _of_recipe(path: Path, index: int) -> list[Mutant]:
    """Mutants of one recipe; the slower ones (bombs, deep nesting, huge integers) only for
    every fourth recipe."""
    heavy = index % 4 == 0
    name = path.relative_to(RECIPES).with_suffix("").as_posix()
    text = path.read_text()
    data = yaml.safe_load(text)
    found: list[Mutant] = []

    def add(
        kind: str,
        label: str,
        verdict: Verdict,
        content: bytes | str | dict,
        *more: Any,
        overrides: tuple[str, ...] = (),
        assembled: bool = False,
    ) -> None:
        files = {"recipe.yaml": _bytes(content)}
        for base_name, base in zip(more[::2], more[1::2], strict=True):
            files[base_name] = _bytes(base)
        found.append(Mutant(f"{name}:{kind}:{label}", kind, verdict, files, overrides, assembled))

    def override(
        kind: str, label: str, verdict: Verdict, *items: str, assembled: bool = False
    ) -> None:
        add(kind, label, verdict, text, overrides=items, assembled=assembled)

    # encodings
    add("encodings", "latin-1 comment", "wrong", text.encode() + "# café\n".encode("latin-1"))
    add("encodings", "0xFF byte", "wrong", b"\xff" + text.encode())
    add("encodings", "UTF-16", "wrong", text.encode("utf-16"))
    add("encodings", "NUL byte", "wrong", text + "seed: 1\x00\n")
    add(
        "encodings",
        "non-UTF-8 base",
        "wrong",
        _extending(data, "local.yaml"),
        "local.yaml",
        b"# base \xe9\n" + _base(data, "").encode(),
    )
    add("encodings", "UTF-8 with BOM", "fine", b"\xef\xbb\xbf" + text.encode())

    # extends shapes
    for label, value in _share(
        [
            ("5", 5),
            ("list with 7", [data["extends"][0], 7]),
            ("[null]", [None]),
            ("null", None),
            ("empty string", ""),
            ("true", True),
            ("nested list", [data["extends"]]),
        ],
        index,
        2,
    ):
        add("extends shapes", label, "wrong", _with(data, ("extends",), value))
    add(
        "extends shapes",
        "mapping naming a real file",
        "wrong",
        _with(data, ("extends",), {data["extends"][0]: 1}),
    )
    add("extends shapes", "missing file", "wrong", _with(data, ("extends",), ["nope.yaml"]))
    add(
        "extends shapes",
        "missing package",
        "wrong",
        _with(data, ("extends",), ["no_such_package:base.yaml"]),
    )
    add(
        "extends shapes",
        "missing packaged base",
        "wrong",
        _with(data, ("extends",), ["laser:base/nope.yaml"]),
    )
    add("extends shapes", "cycle", "wrong", _with(data, ("extends",), ["recipe.yaml"]))
    add(
        "extends shapes",
        "a string, not a list",
        "fine",
        _with(data, ("extends",), data["extends"][0]),
    )
    add(
        "extends shapes",
        "local base",
        "fine",
        _extending(data, "local.yaml"),
        "local.yaml",
        _base(data, "seed: 3\n"),
    )
    add("extends shapes", "empty list", "arguable", _with(data, ("extends",), []))

    # overrides
    override("overrides", "negative index", "wrong", "metrics.-1=mse")
    override("overrides", "index past the end", "wrong", "metrics.9=mse")
    override("overrides", "key under a scalar", "wrong", "train.steps.x=1")
    override("overrides", "deep key under a scalar", "wrong", "seed.a.b=1")
    override("overrides", "word as list index", "wrong", "metrics.first=mse")
    override("overrides", "no value", "wrong", "train.steps")
    override("overrides", "delete what is not there", "wrong", "~train.nope")
    override("overrides", "duplicate key in value", "wrong", "train={steps: 1, steps: 2}")
    override("overrides", "unknown key", "wrong", "train.stepz=3")
    override("overrides", "list item replaced", "fine", "metrics.0=mse")
    override("overrides", "lr as 1e-4", "fine", "train.lr=1e-4")

    # huge numbers
    counts = [k for k in ("codebook_size", "atoms", "levels") if k in data["bottleneck"]]
    for key in counts:
        override("huge numbers", f"{key} 10**30", "wrong", f"bottleneck.{key}={10**30}")
        override("huge numbers", f"{key} 2**40", "wrong", f"bottleneck.{key}={2**40}")
    override("huge numbers", "seed 10**23", "wrong", f"seed={10**23}")
    override("huge numbers", "lr 1e400", "wrong", "train.lr=1.0e400")
    override("huge numbers", "steps 2**64", "wrong", f"train.steps={2**64}")
    if heavy:
        add(
            "huge numbers",
            "100,000-digit seed",
            "wrong",
            _with(data, ("seed",), 0).replace(b"seed: 0", b"seed: " + b"9" * 100_000),
        )

    # nesting
    add(
        "nesting",
        "100 nested mappings",
        "wrong",
        text + "deep: " + "{a: " * 100 + "1" + "}" * 100 + "\n",
    )
    if heavy:
        add("nesting", "5,000-deep list", "wrong", text + "deep: " + "[" * 5000 + "]" * 5000 + "\n")

    # alias bombs
    add("alias bombs", "self-reference", "wrong", text + "loop: &loop [*loop]\n")
    add("alias bombs", "a shared anchor", "fine", _anchored(data))
    if heavy:
        for levels in (7, 8):
            add("alias bombs", f"10^{levels} leaves", "wrong", text + _bomb(levels))

    # wrong domains (the list, then the core's other counts and rates)
    for item in _share(
        [
            "data.batch_size=0",
            "data.batch_size=-16",
            "data.batch_size=true",
            "data.batch_size=16.0",
            "data.num_workers=-2",
            "train.lr=.inf",
            "train.lr=-1",
            "train.lr=0",
            "train.betas=[2, -1]",
            "train.betas=[0.9, 1]",
            "train.lr_per_component={bottleneck: -0.02}",
            "seed=-1",
            "seed=true",
            "losses.recon={}",
            "losses.recon={l1: .nan}",
            "train.grad_accum=0",
            "train.eval_batches=true",
            "train.keep_checkpoints=0",
            "train.min_lr_ratio=2",
            "train.warmup_steps=-5",
            "losses.perceptual=-1",
            "train.grad_clip=.inf",
        ],
        index,
        2,
    ):
        override("wrong domains", item, "wrong", item)
    if "channels" in data.get("encoder", {}):
        for channels in ("[0, 64]", "[-32, 64]"):
            override(
                "wrong domains", f"channels {channels}", "wrong", f"encoder.channels={channels}"
            )
    if "channels" in data.get("encoder", {}) and heavy:  # builds the dataset: seconds
        override(
            "wrong domains", "downsamplings 12", "wrong", "encoder.downsamplings=12", assembled=True
        )
    if "discriminator" in data:
        override(
            "wrong domains",
            "50-layer discriminator",
            "wrong",
            "discriminator.layers=50",
            assembled=True,
        )
    override("wrong domains", "steps 0", "arguable", "train.steps=0")
    override("wrong domains", "recon weights all 0", "arguable", "losses.recon={l1: 0, l2: 0}")
    override("wrong domains", "seed 2**32 - 1", "fine", f"seed={2**32 - 1}")

    # duplicate keys
    add("duplicate keys", "second bottleneck", "wrong", text + "bottleneck: {name: vq}\n")
    add("duplicate keys", "second extends", "wrong", text + "extends: [laser:base/pixels.yaml]\n")
    add(
        "duplicate keys",
        "inside a block",
        "wrong",
        text.replace("bottleneck: {name: ", "bottleneck: {name: x, name: ", 1),
    )
    add(
        "duplicate keys",
        "in a local base",
        "wrong",
        _extending(data, "local.yaml"),
        "local.yaml",
        _base(data, "seed: 1\nseed: 2\n"),
    )

    # unknown keys
    add("unknown keys", "typo of a recipe key", "wrong", text + "trian: {steps: 3}\n")
    add("unknown keys", "typo of a block key", "wrong", _typo_in(data, "bottleneck"))
    add(
        "unknown keys",
        "typo of a train key",
        "wrong",
        _with(data, ("train",), {**data.get("train", {}), "stesp": 3}),
    )
    override("unknown keys", "unknown plugin", "wrong", "bottleneck.name=vqq")

    # wrong types
    for key, value in _share(
        [
            ("bottleneck", 5),
            ("data", "photo-patches"),
            ("train", [1, 2]),
            ("metrics", {"mse": 1}),
            ("losses", "l2"),
            ("seed", "zero"),
            ("metrics", [5]),
            ("bottleneck", {"name": 7}),
        ],
        index,
        2,
    ):
        add("wrong types", f"{key}: {value!r}", "wrong", _with(data, (key,), value))
    add("wrong types", "a list, not a mapping", "wrong", yaml.safe_dump([data]))
    add("wrong types", "empty file", "wrong", "")
    add("wrong types", "int key", "wrong", text + "5: five\n")

    # missing blocks
    for key in _share(["data", "encoder", "bottleneck", "decoder"], index, 2):
        override("missing blocks", f"~{key}", "wrong", f"~{key}")
    add("missing blocks", "bottleneck: null", "wrong", _with(data, ("bottleneck",), None))

    # yaml syntax and tags
    add(
        "yaml syntax and tags",
        "python tag",
        "wrong",
        text + "x: !!python/object/apply:os.getcwd []\n",
    )
    add("yaml syntax and tags", "unclosed bracket", "wrong", text + "train: {steps: 3\n")
    add("yaml syntax and tags", "tab indent", "wrong", text + "train:\n\tsteps: 3\n")

    # valid variants
    add("valid variants", "unchanged copy", "fine", text)
    override("valid variants", "another seed", "fine", "seed=7")
    override("valid variants", "fewer steps", "fine", "train.steps=10")
    return found


def _bytes(content: bytes | str | dict) -> bytes:
    if isinstance(content, bytes):
        return content
    if isinstance(content, str):
        return content.encode()
    return yaml.safe_dump(content, sort_keys=False).encode()


def _with(data: dict, path: tuple[str, ...], value: Any) -> bytes:
    changed = copy.deepcopy(data)
    target = changed
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return _bytes(changed)


def _extending(data: dict, base: str) -> bytes:
    return _with(data, ("extends",), [base])


def _base(data: dict, body: str) -> str:
    """A local base that extends what the recipe extended, plus ``body``."""
    return f"extends: {data['extends']}\n{body}"


def _typo_in(data: dict, block: str) -> bytes:
    """A typo in the first key but ``name`` of ``block``, or of the encoder when the block has
    none (the factorized bottleneck has no options)."""
    changed = copy.deepcopy(data)
    if not set(changed[block]) - {"name"}:
        block = "encoder"
    key = next(k for k in changed[block] if k != "name")
    changed[block] = {(k[:-1] if k == key else k): v for k, v in changed[block].items()}
    return _bytes(changed)


def _anchored(data: dict) -> str:
    """The recipe with its seed anchored and reused by alias as train.warmup_steps."""
    rest = {k: v for k, v in data.items() if k not in ("seed", "train")}
    train = {**data.get("train", {}), "warmup_steps": "ALIAS"}
    train_text = yaml.safe_dump({"train": train}, default_flow_style=True).strip()[1:-1]
    return "seed: &s 3\n" + yaml.safe_dump(rest) + train_text.replace("ALIAS", "*s") + "\n"


def _bomb(levels: int) -> str:
    lines = ["b0: &b0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"b{i}: &b{i} [{', '.join([f'*b{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"
