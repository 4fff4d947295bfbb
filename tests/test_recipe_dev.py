"""benchmarks/recipe_dev.py: scores on a recipe's dev rows, and --reuse only on the same rows."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SPEC = importlib.util.spec_from_file_location(
    "recipe_dev", Path(__file__).resolve().parents[1] / "benchmarks" / "recipe_dev.py"
)
recipe_dev = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(recipe_dev)

ROWS = [
    ("A man is playing a guitar.", "A man plays music.", "support"),
    ("A dog runs in the park.", "A cat sleeps on the sofa.", "neutral"),
    ("The shop is open.", "The shop is closed.", "contradict"),
    ("Two children are swimming.", "Kids are in the water.", "support"),
]


def write_rows(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps({"premise": p, "hypothesis": h, "label": y}) + "\n" for p, h, y in rows))
    return path


def recipe(tmp_path: Path, name: str, dev_rows, base: Path) -> str:
    """A recipe whose dev sets are ``first`` (in the mean) and ``second`` (not)."""
    write_rows(tmp_path / f"{name}-first.jsonl", dev_rows)
    write_rows(tmp_path / f"{name}-second.jsonl", ROWS)
    write_rows(tmp_path / "train.jsonl", ROWS)
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f"model: {{base: {base}}}\n"
        f"data:\n  train:\n    - {{path: {tmp_path / 'train.jsonl'}}}\n  dev:\n"
        f"    - {{path: {tmp_path / f'{name}-first.jsonl'}, name: first}}\n"
        f"    - {{path: {tmp_path / f'{name}-second.jsonl'}, name: second, in_mean: false}}\n"
    )
    return str(path)


def test_scores_record_the_mean_over_in_mean_sets_and_the_rows_digests(tmp_path, tiny_model_dir):
    config = recipe(tmp_path, "a", ROWS[:3], tiny_model_dir)
    result = recipe_dev.score_models(config, [str(tiny_model_dir)])
    scores = result["models"][str(tiny_model_dir)]
    assert result["in_mean"] == ["first"]
    assert scores["mean_macro_f1"] == scores["dev"]["first"]["macro_f1"], "the set outside the mean is not in it"
    assert scores["dev"]["first"]["rows"] == 3 and scores["dev"]["second"]["rows"] == 4
    assert set(result["dev_rows_sha256"]) == {"first", "second"}


def test_reuse_copies_scores_from_another_recipe_on_the_same_rows_without_loading_the_model(tmp_path, tiny_model_dir):
    earlier = recipe_dev.score_models(recipe(tmp_path, "a", ROWS[:3], tiny_model_dir), [str(tiny_model_dir)])
    # the earlier result names a model that does not exist: copying must not load it
    earlier["models"]["gone/adapter"] = {"dev": {}, "mean_macro_f1": 0.5}
    earlier["file"] = "earlier.json"
    later = recipe_dev.score_models(recipe(tmp_path, "b", ROWS[:3], tiny_model_dir), ["gone/adapter"], earlier)
    assert later["models"]["gone/adapter"] == {"dev": {}, "mean_macro_f1": 0.5, "reused_from": "earlier.json"}


@pytest.mark.parametrize(
    "change",
    ["other rows", "rows reordered", "another mean", "no digests, another recipe"],
)
def test_reuse_is_refused_unless_the_rows_and_the_mean_are_the_same(tmp_path, tiny_model_dir, change):
    earlier = recipe_dev.score_models(recipe(tmp_path, "a", ROWS[:3], tiny_model_dir), [str(tiny_model_dir)])
    earlier["file"] = "earlier.json"
    rows = {"other rows": ROWS[1:], "rows reordered": ROWS[:3][::-1]}.get(change, ROWS[:3])
    if change == "another mean":
        earlier["in_mean"] = ["first", "second"]
    if change.startswith("no digests"):
        del earlier["dev_rows_sha256"]
    later = recipe(tmp_path, "b", rows, tiny_model_dir)
    with pytest.raises(SystemExit, match="--reuse earlier.json"):
        recipe_dev.score_models(later, [str(tiny_model_dir)], earlier)


def test_reuse_without_digests_is_allowed_from_the_same_recipe_file(tmp_path, tiny_model_dir):
    config = recipe(tmp_path, "a", ROWS[:3], tiny_model_dir)
    earlier = recipe_dev.score_models(config, [str(tiny_model_dir)])
    del earlier["dev_rows_sha256"]
    earlier["file"] = "earlier.json"
    again = recipe_dev.score_models(config, [str(tiny_model_dir)], earlier)
    assert again["models"][str(tiny_model_dir)]["reused_from"] == "earlier.json"


def test_reuse_is_refused_for_a_model_whose_files_changed_since(tmp_path, tiny_model_dir):
    import shutil

    model = shutil.copytree(tiny_model_dir, tmp_path / "m")
    config = recipe(tmp_path, "a", ROWS[:3], model)
    earlier = recipe_dev.score_models(config, [str(model)]) | {"file": "earlier.json"}
    assert recipe_dev.score_models(config, [str(model)], earlier)["models"][str(model)]["reused_from"]
    (model / "config.json").write_text((model / "config.json").read_text().replace("{", '{"changed": 1, ', 1))
    with pytest.raises(SystemExit, match="has changed since it was scored"):
        recipe_dev.score_models(config, [str(model)], earlier)


def test_reuse_refuses_a_present_model_whose_scores_record_no_digest(tmp_path, tiny_model_dir):
    # model/default once held another adapter under the same name: a name alone proves nothing
    config = recipe(tmp_path, "a", ROWS[:3], tiny_model_dir)
    earlier = recipe_dev.score_models(config, [str(tiny_model_dir)]) | {"file": "earlier.json"}
    del earlier["models"][str(tiny_model_dir)]["model_sha256"]
    with pytest.raises(SystemExit, match="scored without a digest of its files; score it in a run without --reuse"):
        recipe_dev.score_models(config, [str(tiny_model_dir)], earlier)


def test_reuse_finds_the_same_files_scored_under_another_name(tmp_path, tiny_model_dir):
    import shutil

    config = recipe(tmp_path, "a", ROWS[:3], tiny_model_dir)
    run = shutil.copytree(tiny_model_dir, tmp_path / "run" / "adapter")
    earlier = recipe_dev.score_models(config, [str(run)]) | {"file": "earlier.json"}
    exported = shutil.copytree(run, tmp_path / "exported")  # what export_default does: the same files
    copied = recipe_dev.score_models(config, [str(exported)], earlier)["models"][str(exported)]
    assert copied["reused_as"] == str(run) and copied["dev"] == earlier["models"][str(run)]["dev"]
    (exported / "config.json").write_text((exported / "config.json").read_text().replace("{", '{"changed": 1, ', 1))
    scored = recipe_dev.score_models(config, [str(exported)], earlier)["models"][str(exported)]
    assert "reused_from" not in scored, "other files are scored, not copied"


def test_a_copy_found_by_digest_is_still_refused_on_other_dev_rows(tmp_path, tiny_model_dir):
    import shutil

    run = shutil.copytree(tiny_model_dir, tmp_path / "run")
    earlier = recipe_dev.score_models(recipe(tmp_path, "a", ROWS[:3], tiny_model_dir), [str(run)])
    exported = shutil.copytree(run, tmp_path / "exported")
    with pytest.raises(SystemExit, match="dev rows differ"):
        recipe_dev.score_models(
            recipe(tmp_path, "b", ROWS[1:], tiny_model_dir), [str(exported)], earlier | {"file": "e"}
        )


def test_a_copy_by_name_of_a_copy_by_digest_names_only_the_file_it_comes_from(tmp_path, tiny_model_dir):
    import shutil

    config = recipe(tmp_path, "a", ROWS[:3], tiny_model_dir)
    run = shutil.copytree(tiny_model_dir, tmp_path / "run")
    first = recipe_dev.score_models(config, [str(run)]) | {"file": "first.json"}
    exported = shutil.copytree(run, tmp_path / "exported")
    second = recipe_dev.score_models(config, [str(exported)], first) | {"file": "second.json"}
    assert second["models"][str(exported)]["reused_as"] == str(run)
    third = recipe_dev.score_models(config, [str(exported)], second)["models"][str(exported)]
    assert third["reused_from"] == "second.json" and "reused_as" not in third
