"""Break each guarantee LASER makes, on purpose, and check that the test suite notices.

Each mutant below rewrites one snippet of the code in a copy of the working tree (an all-reduce
skipped, a file written in place rather than atomically, a checksum not checked, ...), runs the
tests named as its killers in that copy, and counts as killed when they fail. A mutant that
survives means a guarantee could break without a test failing: the tool then exits 1.

    python tools/mutants.py               # every mutant (about 13 minutes on 2 busy cores)
    python tools/mutants.py --list        # the table, as docs/testing.md shows it
    python tools/mutants.py skip-all-reduce drop-rng-state    # some of them
    python tools/mutants.py --write       # every mutant; the verdicts into docs/testing.md

Before mutating, the killing tests run once on the unmutated copy: they must pass there, or the
mutant's verdict would mean nothing. Killers that hang on a mutant are stopped (see
TIMEOUT_FACTOR) and it counts as "killed (timeout)", so the tool itself never hangs.
tests/test_mutants.py checks that every snippet still stands exactly once in the code and that
docs/testing.md has a verdict for every mutant, so the table cannot silently go stale.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from doc_section import write_section

ROOT = Path(__file__).resolve().parent.parent
# The killers pass unmutated within UNMUTATED_LIMIT seconds. Mutated, they time out past
# TIMEOUT_FACTOR times that run plus TIMEOUT_SLACK: the mutant made them hang (two processes
# out of step wait on each other forever), which counts as killed, as in PIT and Stryker.
UNMUTATED_LIMIT = 900
TIMEOUT_FACTOR, TIMEOUT_SLACK = 3, 120
GRACE_SECONDS = 60  # for a timed-out pytest and its torchrun to stop their processes
DOC = ROOT / "docs" / "testing.md"
START, END = "<!-- mutants table: start -->", "<!-- mutants table: end -->"


@dataclass(frozen=True)
class Mutant:
    name: str
    guarantee: str
    file: str
    original: str
    mutated: str
    killers: tuple[str, ...]


RESUME = "tests/core/test_resume.py"

MUTANTS = (
    Mutant(
        "skip-all-reduce",
        "statistics outside autograd are summed over processes",
        "laser_core/nn/distributed.py",
        "        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)\n",
        "        pass\n",
        ("tests/bottlenecks/test_two_processes.py",),
    ),
    Mutant(
        "skip-broadcast",
        "random choices (k-means seeds, revived codes) are rank 0's on every process",
        "laser_core/nn/distributed.py",
        "        dist.broadcast(tensor, src=0)\n",
        "        pass\n",
        ("tests/bottlenecks/test_two_processes.py",),
    ),
    Mutant(
        "skip-metrics-truncation",
        "a resumed run's metrics.jsonl holds each (step, split) once",
        "laser_core/training/train.py",
        "            rundir.MetricsLog(run_dir).truncate_after(state.step)\n",
        "            pass\n",
        (f"{RESUME}::test_a_killed_run_resumes_to_the_uninterrupted_run",),
    ),
    Mutant(
        "loader-on-global-rng",
        "a resumed run draws the same random numbers as the uninterrupted one",
        "laser_core/training/train.py",
        "        generator=torch.Generator().manual_seed(recipe.seed),\n",
        "",
        (f"{RESUME}::test_a_killed_run_resumes_to_the_uninterrupted_run",),
    ),
    Mutant(
        "write-in-place",
        "run files are written atomically: a crash leaves the old file or the new one",
        "laser_core/files.py",
        "        write(Path(temporary))\n",
        "        write(path)\n        return\n",
        (f"{RESUME}::test_a_crash_while_rewriting_a_run_file_leaves_the_old_file_or_none",),
    ),
    Mutant(
        "drop-rng-state",
        "a checkpoint restores every process's random state",
        "laser_core/rundir/checkpoint.py",
        "    accelerator.save_state(str(partial), safe_serialization=True)\n",
        "    accelerator.save_state(str(partial), safe_serialization=True)\n"
        "    for stale in partial.glob('random_states_*.pkl'):\n        stale.unlink()\n",
        (f"{RESUME}::test_a_killed_run_resumes_to_the_uninterrupted_run",),
    ),
    Mutant(
        "second-ctrl-c-waits",
        "a second Ctrl-C quits at once without saving",
        "laser_core/training/interrupt.py",
        "        if self.requested:\n            raise KeyboardInterrupt\n",
        "",
        (f"{RESUME}::test_a_second_ctrl_c_quits_at_once_without_saving",),
    ),
    Mutant(
        "ctrl-c-not-shared",
        "a Ctrl-C seen by one process stops every process after the same step",
        "laser_core/training/interrupt.py",
        "        return bool(flag[0] > 0)\n",
        "        return bool(self.interrupt.requested)\n",
        (f"{RESUME}::test_two_processes_stay_identical_gather_metrics_and_resume_exactly",),
    ),
    Mutant(
        "skip-sha256-check",
        "a damaged run or checkpoint file is refused by name",
        "laser_core/rundir/manifest.py",
        '    if sha256(path) != expected["sha256"]:\n',
        "    if False:\n",
        ("tests/core/test_run_integrity.py::test_a_damaged_run_file_is_refused_by_name",),
    ),
    Mutant(
        "no-barrier-before-rename",
        "every process finishes writing a checkpoint before it is renamed into place",
        "laser_core/rundir/checkpoint.py",
        "    accelerator.wait_for_everyone()  # every rank's RNG state is in before the rename\n",
        "",
        ("tests/core/test_checkpoint_barrier.py",),
    ),
    Mutant(
        "nearest-is-not-nearest",
        "vq picks the nearest code",
        "laser_core/ops/nearest_code.py",
        "            return _torch_nearest_code(vectors, codebook, chunk_size)\n",
        "            return (vectors @ codebook.t()).argmin(1)\n",
        ("tests/ops/test_nearest_code.py",),
    ),
)


def copy_tree(destination: Path) -> None:
    """The working tree as git sees it (tracked and untracked-not-ignored files), plus the
    ``laser_plugins`` name the built-ins are imported by."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    for name in listed:
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    (destination / "laser_plugins").symlink_to("plugins")


def apply(mutant: Mutant, tree: Path) -> None:
    path = tree / mutant.file
    text = path.read_text()
    if text.count(mutant.original) != 1:
        raise SystemExit(f"{mutant.name}: its snippet no longer stands once in {mutant.file}")
    path.write_text(text.replace(mutant.original, mutant.mutated))


def run_tests(tree: Path, tests: tuple[str, ...], limit: float) -> str:
    """``passed``, ``failed`` or, past ``limit`` seconds, ``timeout``. The tests run in a
    process group of their own, stopped whole on timeout: SIGTERM first, so that a torchrun
    among them stops its workers (which sit in sessions of their own), then SIGKILL."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    with subprocess.Popen(
        command,
        cwd=tree,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    ) as tests_run:
        try:
            return "passed" if tests_run.wait(timeout=limit) == 0 else "failed"
        except subprocess.TimeoutExpired:
            os.killpg(tests_run.pid, signal.SIGTERM)
            try:
                tests_run.wait(timeout=GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(tests_run.pid, signal.SIGKILL)
            return "timeout"


def check(mutant: Mutant) -> tuple[str, float]:
    """The verdict on ``mutant`` and the seconds it took, the unmutated run included."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"mutant-{mutant.name}-") as folder:
        tree = Path(folder)
        copy_tree(tree)
        if run_tests(tree, mutant.killers, UNMUTATED_LIMIT) != "passed":
            return "killers fail unmutated", time.perf_counter() - start
        unmutated = time.perf_counter() - start
        apply(mutant, tree)
        outcome = run_tests(tree, mutant.killers, TIMEOUT_FACTOR * unmutated + TIMEOUT_SLACK)
    verdict = {"failed": "killed", "timeout": "killed (timeout)", "passed": "SURVIVED"}
    return verdict[outcome], time.perf_counter() - start


def table(results: dict[str, tuple[str, float]] | None = None) -> str:
    """The mutants as a Markdown table; with ``results``, each one's verdict and seconds."""
    head = "| mutant | guarantee it breaks | where | killed by |"
    if results:
        head += " verdict | seconds |"
    lines = [head, "|" + " --- |" * head.count(" |")]
    for m in MUTANTS:
        killers = "<br>".join(f"`{k}`" for k in m.killers)
        line = f"| `{m.name}` | {m.guarantee} | `{m.file}` | {killers} |"
        if results:
            verdict, seconds = results[m.name]
            line += f" {verdict} | {seconds:.0f} |"
        lines.append(line)
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="mutants to check (default: all)")
    parser.add_argument("--list", action="store_true", help="print the table and stop")
    parser.add_argument(
        "--write", action="store_true", help="check every mutant; put the verdicts in " + DOC.name
    )
    args = parser.parse_args()
    if args.list:
        print(table())
        return 0
    if args.write and args.names:
        raise SystemExit("--write checks every mutant: name none")
    unknown = set(args.names) - {m.name for m in MUTANTS}
    if unknown:
        raise SystemExit(f"unknown mutants: {', '.join(sorted(unknown))}")
    chosen = [m for m in MUTANTS if not args.names or m.name in args.names]
    results = {}
    for mutant in chosen:
        verdict, seconds = results[mutant.name] = check(mutant)
        print(f"{mutant.name:<28} {verdict:<24} {seconds:6.0f} s", flush=True)
    if args.write:
        write_section(DOC, START, END, table(results))
    return 0 if all(v.startswith("killed") for v, _ in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
