"""The ``laser`` command. User errors print as one clear message, never a traceback."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from laser_core.cli.campaigns import add_commands as add_campaign_commands
from laser_core.cli.coding import add_commands as add_compression_commands
from laser_core.cli.downstream import add_commands as add_downstream_commands
from laser_core.cli.downstream import parse_dataset
from laser_core.cli.importers import add_commands as add_import_commands
from laser_core.cli.priors import add_commands as add_prior_commands
from laser_core.errors import LaserError, RecipeError, world_problem

DEBUG_ENV = "LASER_DEBUG"
THREAD_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}
"""torch's OpenMP threads wait for work by spinning, which on a CPU shared with other processes
takes the cores the work needs: under load, quickstart runs took several times longer than
with threads that sleep while they wait (docs/benchmarks.md, "Threads under load"). Set before
torch loads, unless the environment sets it."""


def main(argv: list[str] | None = None) -> int:
    """Run one command. A user's mistake is one message, never a traceback, and so is a
    failure of the machine (a full disk, a refused permission: errors.world_problem); anything
    else is a short message naming the command, with the traceback behind --debug or
    LASER_DEBUG=1."""
    for name, value in THREAD_ENV.items():
        os.environ.setdefault(name, value)
    parser = _parser()
    args = _parse(parser, argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s"
    )
    debug = args.debug or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    try:
        return args.command(args) or 0
    except BrokenPipeError:
        return _closed_pipe()
    except LaserError as error:
        if debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2 if isinstance(error, RecipeError) else 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if debug:
            raise
        problem = world_problem(error)
        if problem is not None:
            print(f"error: laser {args.command_name}: {problem}", file=sys.stderr)
            return 1
        print(
            f"error: laser {args.command_name} failed: {type(error).__name__}: {error}\n"
            f"this is a bug in LASER or a plugin, not in your input; rerun with --debug "
            f"(or {DEBUG_ENV}=1) for the traceback and report it",
            file=sys.stderr,
        )
        return 1


def _closed_pipe() -> int:
    """The reader went away (``laser plugins | head``): stop quietly, as a Unix tool does,
    pointing stdout at /dev/null so that flushing at exit raises nothing either."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 141  # 128 + SIGPIPE, what a shell reports for a command killed by a closed pipe


def _parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse, accepting overrides after options too (``laser run r.yaml --run-dir D a.b=1``),
    which argparse alone refuses once an option has ended the positionals."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        if not hasattr(args, "overrides") or not all(_is_override(item) for item in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = [*args.overrides, *extra]
    return args


def _is_override(item: str) -> bool:
    return not item.startswith("-") and ("=" in item or item.startswith("~"))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="laser", description="Train and study discrete and sparse latent autoencoders."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    parser.add_argument(
        "--debug", action="store_true", help=f"show tracebacks (also: {DEBUG_ENV}=1)"
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(name: str, handler, help_: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_, description=help_)
        sub.set_defaults(command=handler, command_name=name)
        return sub

    command("plugins", _plugins, "list installed components and plugins that failed to load")

    sub = command(
        "validate",
        _validate,
        "validate a recipe, build its components on a probe batch, print it fully resolved",
    )
    _recipe_arguments(sub)

    sub = command("schema", _schema, "write the recipe JSON Schema for the installed plugins")
    sub.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")

    sub = command("run", _run, "train a recipe, or resume a run directory")
    sub.add_argument("recipe", nargs="?", type=Path, help="recipe YAML (omit with --resume)")
    sub.add_argument("overrides", nargs="*", help="key.sub=value or ~key.sub")
    sub.add_argument("--run-dir", type=Path, help="default: runs/<recipe>-<timestamp>")
    sub.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue this run")

    sub = command(
        "eval",
        _eval,
        "recompute validation metrics of a finished run (and its trained priors' bits)",
    )
    sub.add_argument("run_dir", type=Path)
    sub.add_argument("overrides", nargs="*", help="recipe overrides, e.g. data.val_patches=256")
    sub.add_argument(
        "--dataset", help="a dataset block in YAML, e.g. '{name: image-folder, path: photos}'"
    )
    sub.add_argument(
        "--whole-split",
        action="store_true",
        help="evaluate every validation example; default: those of the run's final validation "
        "(the first train.eval_batches batches), so the numbers match metrics.json",
    )

    add_campaign_commands(command)

    sub = command("weights", _weights, "list pretrained weight files, or import one offline")
    actions = sub.add_subparsers(dest="action", metavar="ACTION")
    actions.add_parser("list", help="each known file, what uses it, and whether it is cached")
    imported = actions.add_parser("import", help="check a file's hash and copy it into the cache")
    imported.add_argument("file", type=Path)

    add_compression_commands(command)
    add_downstream_commands(command)
    add_import_commands(command)
    add_prior_commands(command)

    sub = command("new-plugin", _new_plugin, "write a ready-to-install plugin package")
    sub.add_argument("name", help="component name, e.g. my-quantizer")
    sub.add_argument("-o", "--output", type=Path, default=Path("."), help="parent folder")
    return parser


def _recipe_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("recipe", type=Path)
    sub.add_argument("overrides", nargs="*", help="key.sub=value or ~key.sub")


def _plugins(args: argparse.Namespace) -> int:
    from laser_core.plugin.contracts import KINDS
    from laser_core.plugin.registry import default_registry

    registry = default_registry()
    for kind in KINDS:
        components = sorted(registry.of_kind(kind), key=lambda c: (c.name, c.qualified_name))
        print(f"{kind}:")
        if not components:
            print("  (none)")
        for c in components:
            print(f"  {c.name:<16} {c.provider!s:<34} {c.summary}{_name_note(registry, c)}")
    if registry.failures:
        print("plugins that failed to load:")
        for failure in registry.failures:
            print(f"  {failure.provider}: {failure.error}")
        return 1
    return 0


def _name_note(registry, component) -> str:
    """Why a bare name does not pick ``component``, and the qualified name that does."""
    try:
        chosen = registry.get(component.kind, component.name)
    except LaserError:
        return f"  [ambiguous name: write '{component.qualified_name}']"
    if chosen is component:
        return ""
    owner = "the built-in" if chosen.provider.builtin else f"{chosen.provider.plugin}'s"
    return f"  [shadowed by {owner} '{chosen.name}'; this one is '{component.qualified_name}']"


def _validate(args: argparse.Namespace) -> None:
    import yaml

    from laser_core.assembly.build import check_recipe
    from laser_core.recipes.model import load_recipe

    recipe = load_recipe(args.recipe, args.overrides)
    check_recipe(recipe)
    print(yaml.safe_dump(recipe.resolved(), sort_keys=False), end="")


def _schema(args: argparse.Namespace) -> None:
    from laser_core.files import atomic_write_text
    from laser_core.plugin.registry import default_registry
    from laser_core.recipes.schema import recipe_schema

    text = json.dumps(recipe_schema(default_registry()), indent=2) + "\n"
    if args.output:
        atomic_write_text(args.output, text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        print(text, end="")


def _run(args: argparse.Namespace) -> None:
    from accelerate import PartialState

    from laser_core.recipes.model import load_recipe
    from laser_core.runs.tasks import format_table
    from laser_core.runs.workflow import resume_run, run_recipe

    if args.resume:
        if args.run_dir:
            raise LaserError("--resume continues the run where it is; drop --run-dir")
        overrides = [str(args.recipe), *args.overrides] if args.recipe else args.overrides
        result = resume_run(args.resume, overrides)
    elif args.recipe:
        result = run_recipe(load_recipe(args.recipe, args.overrides), args.run_dir)
    else:
        raise LaserError("give a recipe to run, or --resume RUN_DIR")
    if PartialState().is_main_process:
        _report(result.before, "before training")
        _report(result.after, "after training")
        print(f"run directory: {result.run_dir}")
        if result.recipe.task is not None:
            print(f"task {result.recipe.task.name}:\n{format_table(result.task)}")


def _report(metrics: dict[str, float], when: str) -> None:
    numbers = {k: v for k, v in metrics.items() if k != "val_examples"}
    if numbers:
        shown = ", ".join(f"{k} {v:.4g}" for k, v in numbers.items())
        print(f"validation {when}: {shown} ({metrics['val_examples']} examples)")


def _eval(args: argparse.Namespace) -> None:
    from accelerate import PartialState

    from laser_core.priors.evaluate import prior_metrics
    from laser_core.runs.workflow import evaluate_run

    dataset = parse_dataset(args.dataset)
    result = evaluate_run(args.run_dir, args.overrides, dataset, args.whole_split)
    if PartialState().is_main_process:
        if dataset is None and not args.overrides:  # priors model the run's own codes
            result.metrics.update(prior_metrics(args.run_dir))
        which = (
            "the whole split"
            if args.whole_split
            else "the first train.eval_batches batches, as the run validated; --whole-split for all"
        )
        step = "" if result.step is None else f" (step {result.step})"
        print(
            f"evaluated {result.weights}{step} on {result.dataset['name']} "
            f"{result.split}: {result.examples} of {result.split_examples} examples, {which}",
            file=sys.stderr,
        )
        print(json.dumps(result.to_json(), indent=2))


def _weights(args: argparse.Namespace) -> None:
    from laser_core.assembly import weights

    if args.action == "import":
        print(f"imported {args.file} as {weights.import_file(args.file)}")
        return
    print(f"cache: {weights.cache_dir()}")
    for known in weights.known_weights().values():
        where = "cached" if known.path.is_file() else "missing"
        print(f"  {known.name:<44} {where:<8} {known.used_by}")


def _new_plugin(args: argparse.Namespace) -> None:
    from laser_core.plugin.scaffold import write_plugin_package

    folder = write_plugin_package(args.name, args.output)
    print(f"wrote {folder}; install it with: pip install -e {folder}")
