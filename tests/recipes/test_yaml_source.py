"""Reading recipe YAML is bounded and strict: duplicate keys, non-UTF-8 bytes, alias bombs,
deep nesting, huge integers, malformed `extends:` and bad override paths are each one located
error, never a traceback, a hang or a silently different recipe."""

from __future__ import annotations

import time

import pytest

from laser_core.errors import RecipeError
from laser_core.recipes.model import load_recipe
from tests.helpers import TINY_RECIPE, problems_of


def test_a_duplicate_key_is_an_error_at_the_second_one(write_recipe):
    path = write_recipe(TINY_RECIPE + "bottleneck: {name: gaussian}\n")
    message = problems_of(path)
    assert f"{path.resolve()}:8: bottleneck: duplicate key (first at line 4)" in message


def test_a_duplicate_key_inside_a_block_is_named_by_its_path(write_recipe):
    path = write_recipe(TINY_RECIPE.replace("codebook_size: 16", "codebook_size: 16, name: rq"))
    assert f"{path.resolve()}:4: bottleneck.name: duplicate key" in problems_of(path)


def test_a_duplicate_key_in_a_base_is_an_error_in_the_base(write_recipe):
    base = write_recipe("seed: 1\nseed: 2\n", "base.yaml")
    child = write_recipe(TINY_RECIPE.replace("seed: 0", "extends: base.yaml"))
    assert f"{base.resolve()}:2: seed: duplicate key (first at line 1)" in problems_of(child)


def test_a_duplicate_key_in_an_override_value_is_an_error(write_recipe):
    override = "bottleneck={name: vq, name: rq}"
    message = problems_of(write_recipe(TINY_RECIPE), (override,))
    assert f"override '{override}': bottleneck.name: duplicate key" in message


def test_a_merge_key_may_be_overridden_as_yaml_intends(write_recipe):
    text = TINY_RECIPE.replace(
        "bottleneck: {name: vq, codebook_size: 16}",
        "common: &vq {name: vq, codebook_size: 16}\nbottleneck: {<<: *vq, codebook_size: 8}",
    ).replace("common:", "x-common:")
    with pytest.raises(RecipeError, match="x-common: unknown key"):
        load_recipe(write_recipe(text))  # the merge itself passed; only the extra key is wrong


@pytest.mark.parametrize(
    ("encode", "byte", "offset"),
    [
        (lambda text: text.encode() + "# café\n".encode("latin-1"), 0xE9, None),
        (lambda text: b"\xff" + text.encode(), 0xFF, 0),
        (lambda text: text.encode("utf-16"), 0xFF, 0),
    ],
    ids=["latin-1 comment", "0xFF", "UTF-16"],
)
def test_a_file_that_is_not_utf8_names_the_file_and_byte_offset(tmp_path, encode, byte, offset):
    path = tmp_path / "recipe.yaml"
    raw = encode(TINY_RECIPE)
    path.write_bytes(raw)
    offset = raw.index(byte.to_bytes(1, "big")) if offset is None else offset
    message = problems_of(path)
    assert f"not UTF-8: byte 0x{byte:02x} at byte offset {offset}" in message
    assert str(path.resolve()) in message


def test_a_base_that_is_not_utf8_is_named(write_recipe, tmp_path):
    (tmp_path / "base.yaml").write_bytes(b"seed: 1 # \xe9\n")
    child = write_recipe(TINY_RECIPE.replace("seed: 0", "extends: base.yaml"))
    assert f"{(tmp_path / 'base.yaml').resolve()}:1: (top level): not UTF-8" in problems_of(child)


def test_an_alias_bomb_fails_fast(write_recipe):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    path = write_recipe(TINY_RECIPE + "\n".join(lines) + "\n")  # 10**9 leaves
    start = time.perf_counter()
    message = problems_of(path)
    assert time.perf_counter() - start < 0.5
    assert "aliases expand to more than 100000 values" in message


def test_a_self_referencing_alias_is_an_error(write_recipe):
    assert "an alias refers to the value that contains it" in problems_of(
        write_recipe(TINY_RECIPE + "loop: &loop [*loop]\n")
    )


def test_absurd_nesting_is_an_error_at_its_line(write_recipe):
    path = write_recipe(TINY_RECIPE + "deep: " + "[" * 5000 + "]" * 5000 + "\n")
    assert f"{path.resolve()}:8: (top level): nested more than 64 levels" in problems_of(path)


def test_a_huge_integer_is_an_error_at_its_key(write_recipe):
    path = write_recipe(TINY_RECIPE.replace("seed: 0", "seed: " + "9" * 100_000))
    message = problems_of(path)
    assert f"{path.resolve()}:1: seed: an integer of 100000 digits" in message


def test_python_tags_never_execute(write_recipe, tmp_path):
    marker = tmp_path / "executed"
    tag = f"!!python/object/apply:os.system ['touch {marker}']"
    message = problems_of(write_recipe(TINY_RECIPE + f"x: {tag}\n"))
    assert "could not determine a constructor for the tag" in message
    assert not marker.exists()


@pytest.mark.parametrize(
    ("extends", "key", "expected"),
    [
        ("5", "extends", "takes a path or a list of paths, not 5"),
        ("{base.yaml: 1}", "extends", "takes a path or a list of paths, not a mapping"),
        ("[base.yaml, 7]", "extends.1", "7 is not a path"),
        ("[null]", "extends.0", "None is not a path"),
        ("null", "extends", "takes a path or a list of paths, not None"),
        ("['']", "extends.0", "'' is not a path"),
    ],
)
def test_extends_takes_paths_and_nothing_else(write_recipe, extends, key, expected):
    write_recipe("seed: 1\n", "base.yaml")
    path = write_recipe(TINY_RECIPE.replace("seed: 0", f"extends: {extends}"))
    assert f"{path.resolve()}:1: {key}: {expected}" in problems_of(path)


def test_a_missing_base_file_is_located_at_its_extends_entry(write_recipe):
    path = write_recipe(TINY_RECIPE.replace("seed: 0", "extends:\n- base.yaml"))
    message = problems_of(path)
    assert f"{path.resolve()}:2: extends.0: no such file" in message
    assert "relative to this recipe" in message


def test_a_missing_block_is_reported_against_the_recipe_that_lacks_it(write_recipe):
    write_recipe("# a base\nseed: 1\ntrain: {steps: 3}\n", "base.yaml")
    text = TINY_RECIPE.replace("seed: 0", "extends: base.yaml")
    path = write_recipe(text.replace("encoder: {name: conv, channels: [8, 16], ", "x: {"))
    assert f"{path.resolve()}: encoder: required block is missing" in problems_of(path)


@pytest.mark.parametrize(
    ("override", "key", "expected"),
    [
        ("encoder.channels.-1=8", "encoder.channels.-1", "'-1' is not an index of this 2-item"),
        ("encoder.channels.2=8", "encoder.channels.2", "'2' is not an index"),
        ("~encoder.channels.-1", "encoder.channels.-1", "'-1' is not an index"),
        ("train.steps.x=1", "train.steps", "is a value, not a mapping"),
        ("train.steps.x.y=1", "train.steps", "is a value, not a mapping"),
        ("encoder.channels.x=1", "encoder.channels.x", "'x' is not an index"),
    ],
)
def test_a_bad_override_path_is_located_at_the_override(write_recipe, override, key, expected):
    message = problems_of(write_recipe(TINY_RECIPE), (override,))
    assert f"override '{override}': {key}: {expected}" in message


def test_an_override_may_replace_a_list_item(write_recipe):
    recipe = load_recipe(write_recipe(TINY_RECIPE), ["encoder.channels.1=32"])
    assert recipe.encoder.config.channels == [8, 32]
