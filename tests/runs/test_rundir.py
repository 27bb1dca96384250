"""The run directory's writers: the exact bytes of each file, completeness, reading a run back and finding the
runs under a folder."""

from __future__ import annotations

import json
import logging

import pandas as pd
import pytest
from run_factory import SEEDS, write_run

from tailtune.errors import TailTuneError
from tailtune.runs import records, rundir
from tailtune.runs.records import find_runs, load_run

CONFIG = {"tailtune_version": "0.1.0", "run": {"strategy": "vanilla", "seed": 3}, "labels": ["ä", "b"]}
METRICS = {"macro_f1": 0.5, "per_class": {"ä": {"f1": 0.25}}, "split": "test"}


def test_files_have_the_layout_training_writes(tmp_path):
    run = tmp_path / "run"
    rundir.write_config(run, CONFIG)
    rundir.reset_history(run)
    entries = [{"stage": 0, "stage_name": "finetune", "step": 10, "loss": 0.5, "lr": 1e-5}, {"eval_macro_f1": 0.4}]
    for entry in entries:
        rundir.append_history(run, entry)
    frame = pd.DataFrame({"text": ["a, b", "c"], "label": ["ä", "b"], "predicted": ["b", "b"], "score": [0.5, 1.0]})
    rundir.write_predictions(run, frame)
    with rundir.writing_model(run) as folder:
        (folder / "weights.bin").write_bytes(b"w")
    assert not rundir.is_complete(run)
    rundir.write_metrics(run, METRICS)

    assert rundir.is_complete(run)
    assert (run / "config.json").read_text(encoding="utf-8") == json.dumps(CONFIG, indent=2, ensure_ascii=False) + "\n"
    assert (run / "history.jsonl").read_text(encoding="utf-8") == "".join(json.dumps(e) + "\n" for e in entries)
    assert (run / "predictions.csv").read_text(encoding="utf-8") == frame.to_csv(index=False)
    assert (run / "model" / "weights.bin").read_bytes() == b"w"
    assert sorted(p.name for p in run.iterdir()) == [
        "config.json", "history.jsonl", "metrics.json", "model", "predictions.csv",
    ]  # fmt: skip

    record = records.load_run(run)
    assert (record.strategy, record.seed, record.variant, record.labels) == ("vanilla", 3, "default", ["ä", "b"])
    assert record.metrics == METRICS
    assert record.predictions()["label"].tolist() == ["ä", "b"]


def test_config_record_writes_config_json_as_runs_read_it(tmp_path):
    """ConfigRecord lays out config.json in the order runs write it (environment keys last, no fingerprints where
    none were taken) and reads it back; the run it starts is incomplete."""
    record = records.ConfigRecord(
        run={"strategy": "vanilla", "seed": 3}, task="single-label", labels=["ä", "b"], train_counts={"ä": 3, "b": 1},
        data={"train": "train.csv", "eval": None, "test": None}, versions={"python": "3.11"},
        environment={"accelerate": {"device": "cpu"}}, created="2024-05-01T12:00:00+00:00",
    )  # fmt: skip
    path = record.write(tmp_path)
    written = json.loads(path.read_text(encoding="utf-8"))
    assert list(written) == ["tailtune_version", "created", "versions", "run", "task", "labels", "train_counts", "data",
                             "variant", "variant_info", "accelerate"]  # fmt: skip
    assert records.ConfigRecord.from_json(written) == record and not rundir.is_complete(tmp_path)
    fingerprinted = records.ConfigRecord.from_json({**written, "fingerprints": {"train": "abc"}})
    assert list(fingerprinted.to_json())[8] == "fingerprints"
    assert rundir.write_metrics(tmp_path, METRICS) and load_run(tmp_path).labels == ["ä", "b"]


def test_starting_a_run_again_marks_it_incomplete(tmp_path):
    rundir.write_config(tmp_path, CONFIG)
    rundir.append_history(tmp_path, {"step": 1})
    rundir.write_metrics(tmp_path, METRICS)
    rundir.write_config(tmp_path, CONFIG)
    rundir.reset_history(tmp_path)
    assert not rundir.is_complete(tmp_path)
    assert (tmp_path / "history.jsonl").read_text(encoding="utf-8") == ""
    with pytest.raises(TailTuneError, match="incomplete run"):
        records.load_run(tmp_path)


def test_a_failed_model_save_leaves_no_model(tmp_path):
    with pytest.raises(RuntimeError), rundir.writing_model(tmp_path) as folder:
        (folder / "half.bin").write_bytes(b"x")
        raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []


def test_waiting_lock_lets_the_holder_finish_first(tmp_path):
    """A second process (here: a second open file) waits on waiting_lock until the holder leaves."""
    import threading
    import time

    from tailtune.fileio import waiting_lock

    path, order = tmp_path / "sub" / ".data.lock", []

    def second() -> None:
        with waiting_lock(path):
            order.append("second")

    with waiting_lock(path):
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.3)
        order.append("first")
    thread.join(timeout=10)
    assert order == ["first", "second"]


def edit_config(run_dir, change) -> None:
    """Change a run's config.json in place."""
    path = run_dir / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    change(config)
    path.write_text(json.dumps(config), encoding="utf-8")


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda c: c["data"].update(train="other/train.csv"), "data.train"),
        (lambda c: c["data"].update(test="/data/other/test.csv"), "data.test"),
        (lambda c: c.update(labels=["world", "sports", "business", "science"]), "labels[3]"),
        (lambda c: c["train_counts"].update(world=7), "train_counts.world"),
        (lambda c: c["run"].update(max_length=256), "run.max_length"),
        (lambda c: c["run"].update(model="/elsewhere/bert-large"), "run.model"),
        (lambda c: c["run"]["stages"][0].update(lr=0.5), "stages[0].lr"),
    ],
)
def test_runs_that_differ_in_more_than_the_seed_are_not_pooled(tmp_path, change, key):
    first = write_run(tmp_path / "a", strategy="vanilla", seed=0)
    other = write_run(tmp_path / "b", strategy="vanilla", seed=1)
    edit_config(other, change)
    with pytest.raises(TailTuneError) as info:
        records.check_poolable(records.find_runs(tmp_path))
    message = str(info.value)
    assert message.startswith(f"{first} and {other} cannot be pooled as ")
    assert f": they differ in {key} (" in message and "separate folders" in message and "\n" not in message


def test_strategies_of_one_variant_must_share_the_data(tmp_path):
    first = write_run(tmp_path / "a", strategy="vanilla", seed=0)
    other = write_run(tmp_path / "b", strategy="two-stage", seed=0)
    edit_config(other, lambda c: c["data"].update(test="other/test.csv"))
    with pytest.raises(TailTuneError, match=r"cannot be pooled as runs of variant default: they differ in data\.test "
                                            r'\("data/test\.csv" vs "other/test\.csv"\)') as info:  # fmt: skip
        records.check_poolable(records.find_runs(tmp_path))
    assert str(first) in str(info.value) and str(other) in str(info.value)


def test_a_seed_counts_once(tmp_path):
    write_run(tmp_path / "a", strategy="vanilla", seed=4)
    write_run(tmp_path / "b", strategy="vanilla", seed=4)
    with pytest.raises(TailTuneError, match=r"a.* and .*b are both seed 4 of default/vanilla"):
        records.check_poolable(records.find_runs(tmp_path))


def test_seeds_of_one_setup_are_pooled(tmp_path):
    """Settings that do not change what a run learns, a moved model folder, versions and a tuned budget may differ."""
    runs = [write_run(tmp_path / "vanilla" / f"seed-{seed}", strategy="vanilla", seed=seed) for seed in (0, 1, 2)]
    two_stage = write_run(tmp_path / "two-stage" / "seed-0", strategy="two-stage", seed=0)
    edit_config(runs[1], lambda c: c["run"].update(cache_dir="/tmp/cache", eval_batch_size=8, logging_steps=50))
    edit_config(runs[1], lambda c: c.update(tailtune_version="9.9", created="2030-01-01"))
    for run, place in zip([*runs, two_stage], ("old", "old", "new", "new"), strict=True):
        edit_config(run, lambda c, place=place: c["run"].update(model=f"/{place}/site-packages/minilm"))
        # An experiment folder moved between runs: its made data moved with it.
        edit_config(run, lambda c, place=place: c["data"].update(train=f"/{place}/out/exp-10/data/train.parquet"))
    records.check_poolable(records.find_runs(tmp_path))

    # An experiment's tuned runs: each seed's search chose its own budget, kept beside the run.
    edit_config(runs[2], lambda c: c["run"]["stages"][0].update(lr=0.5))
    with pytest.raises(TailTuneError, match=r"stages\[0\]\.lr"):
        records.check_poolable(records.find_runs(tmp_path))
    for run in runs:
        rundir.tuning_dir(run).mkdir()
    assert records.load_run(runs[2]).tuned
    records.check_poolable(records.find_runs(tmp_path))


def test_runs_that_recorded_the_stages_twice_still_read_and_pool(tmp_path):
    """config.json once repeated the stages at its top level: such runs read as before and pool with new ones,
    and the stages read are the run config's."""
    old = write_run(tmp_path / "seed-0", seed=0)
    edit_config(old, lambda c: c.update(stages=c["run"]["stages"]))
    new = write_run(tmp_path / "seed-1", seed=1)
    assert "stages" not in json.loads((new / "config.json").read_text(encoding="utf-8"))
    records.check_poolable(records.find_runs(tmp_path))
    assert records.load_run(old).stages == records.load_run(new).stages == json.loads(
        (new / "config.json").read_text(encoding="utf-8"))["run"]["stages"]  # fmt: skip
    edit_config(new, lambda c: c["run"]["stages"][0].update(lr=0.5))
    with pytest.raises(TailTuneError, match=r"stages\[0\]\.lr"):
        records.check_poolable(records.find_runs(tmp_path))


def test_find_runs_skips_incomplete_runs_and_saved_models(experiment, caplog):
    with caplog.at_level(logging.WARNING, logger="tailtune.runs.rundir"):
        runs = find_runs(experiment)
    assert len(runs) == 2 * 2 * len(SEEDS)
    assert all(run.path.name.startswith("seed-") for run in runs)  # model/config.json is not a run
    assert [(r.variant, r.strategy, r.seed) for r in runs] == sorted((r.variant, r.strategy, r.seed) for r in runs)
    assert "drw" not in {r.strategy for r in runs}
    assert any("1 incomplete" in message for message in caplog.messages)


def test_load_run_reads_the_contract(experiment):
    run = load_run(experiment / "exp-10" / "two-stage" / "seed-1")
    assert (run.variant, run.strategy, run.seed, run.ratio) == ("exp-10", "two-stage", 1, 10)
    assert run.labels == list(run.train_counts)
    frame = run.predictions()
    assert list(frame.columns) == ["text", "label", "predicted", "score"]
    assert len(frame) == run.metrics["n_examples"]
    assert run.predictions() is frame  # read once


def test_a_run_directory_is_its_own_root(experiment):
    runs = find_runs(experiment / "exp-10" / "vanilla" / "seed-2")
    assert [(r.strategy, r.seed) for r in runs] == [("vanilla", 2)]


def test_null_variant_is_default(tmp_path):
    write_run(tmp_path / "run", strategy="vanilla", seed=3)
    (run,) = find_runs(tmp_path)
    assert (run.variant, run.ratio) == ("default", None)


def test_incomplete_run_cannot_be_loaded(experiment):
    with pytest.raises(TailTuneError, match="incomplete run"):
        load_run(experiment / "exp-50" / "drw" / "seed-0")


def test_missing_root_is_a_user_error(tmp_path):
    with pytest.raises(TailTuneError, match="no such directory"):
        find_runs(tmp_path / "nope")


# ------------------------------------------------------------------------- what a run may replace


def _user_folder(path):
    """A folder of the user's: notes, a subfolder and a data file."""
    (path / "sub").mkdir(parents=True)
    (path / "notes.txt").write_text("keep me", encoding="utf-8")
    (path / "train.csv").write_text("text,label\na,b\n", encoding="utf-8")
    return path


def _names(path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


def _refusal(folder) -> str:
    """The refusal of :func:`_user_folder` as an output."""
    return (f"{folder}: holds files that are not part of a tailtune run ('notes.txt', 'sub', 'train.csv'); the run "
            "replaces the whole folder, so write it to a new or empty one")  # fmt: skip


def test_a_run_replaces_only_a_run(tmp_path):
    """A missing or empty folder, an earlier run (complete, incomplete or failed) are replaced; a folder of the
    user's is refused before the run starts (claim) and again before it is published, and left as it was."""
    targets = {"missing": tmp_path / "missing", "empty": tmp_path / "empty", "complete": tmp_path / "complete",
               "incomplete": tmp_path / "incomplete", "failed": tmp_path / "failed"}  # fmt: skip
    targets["empty"].mkdir()
    write_run(targets["complete"], strategy="vanilla", seed=1)
    rundir.write_config(targets["incomplete"], CONFIG)
    rundir.write_failure(targets["failed"], "diverged")
    for target in targets.values():
        with rundir.claim(target) as staging:
            rundir.write_config(staging, CONFIG)
            rundir.write_metrics(staging, METRICS)
            rundir.publish(staging, target)
        assert _names(target) == ["config.json", "metrics.json"]

    mine = _user_folder(tmp_path / "mine")
    with pytest.raises(TailTuneError) as info, rundir.claim(mine):
        pytest.fail("claim must refuse the folder")
    assert str(info.value) == _refusal(mine)
    with rundir.claim(tmp_path / "late") as staging:
        rundir.write_config(staging, CONFIG)
        _user_folder(tmp_path / "late")  # made while the run trained
        with pytest.raises(TailTuneError, match="holds files that are not part of a tailtune run"):
            rundir.publish(staging, tmp_path / "late")
    assert _names(mine) == _names(tmp_path / "late") == ["notes.txt", "sub", "train.csv"]
    assert (mine / "notes.txt").read_text(encoding="utf-8") == "keep me"


def test_a_model_config_is_not_a_run(tmp_path):
    """A saved model (a Hugging Face config.json) in --output is not a run to replace."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"architectures": ["BertForSequenceClassification"]}))
    with pytest.raises(TailTuneError, match=r"not part of a tailtune run \('config.json'\)"):
        rundir.check_run_folder(model)


def test_a_run_never_replaces_the_current_folder(tmp_path, monkeypatch):
    write_run(tmp_path / "run", strategy="vanilla", seed=1)
    monkeypatch.chdir(tmp_path / "run")
    for target in (".", "..", str(tmp_path)):
        with pytest.raises(TailTuneError, match=r"is the current folder or holds it; name a new folder for the run$"):
            rundir.check_run_folder(target)
    assert "config.json" in _names(tmp_path / "run")


def test_train_refuses_an_output_that_is_not_a_run_before_training(tiny_model, tiny_data, tmp_path, capsys,
                                                                   monkeypatch):  # fmt: skip
    """--output naming a folder of the user's, one holding the training data, or the current folder is one line and
    exit 2, with or without --overwrite; nothing in it is touched and nothing is trained."""
    from tailtune.cli import main
    from tailtune.training import family

    monkeypatch.setattr(family, "fit", lambda *a, **k: pytest.fail("must not train"))
    train = ["train", "--model", tiny_model, "--test", str(tiny_data["test"]), "--epochs", "1", "-q"]
    mine = _user_folder(tmp_path / "mine")
    for extra in ([], ["--overwrite"]):
        assert main([*train, "--train", str(tiny_data["train"]), "--output", str(mine), *extra]) == 2
        assert capsys.readouterr().err == f"tailtune: error: {_refusal(mine)}\n"
        assert main([*train, "--train", str(mine / "train.csv"), "--output", str(mine), *extra]) == 2
        assert capsys.readouterr().err == (f"tailtune: error: the train data {mine / 'train.csv'} is inside {mine}, "
                                           "which the run replaces whole; choose another folder\n")  # fmt: skip
    monkeypatch.chdir(mine)
    assert main([*train, "--train", str(tiny_data["train"]), "--output", "."]) == 2
    assert capsys.readouterr().err == ("tailtune: error: .: is the current folder or holds it; name a new folder for "
                                       "the run\n")  # fmt: skip
    assert _names(mine) == ["notes.txt", "sub", "train.csv"]
    assert (mine / "notes.txt").read_text(encoding="utf-8") == "keep me"
    assert _names(tmp_path) == ["mine"]  # no lock or staging folder left beside it


def test_tune_refuses_a_final_run_folder_of_the_users_before_searching(tiny_model, tiny_data, tmp_path):
    from tailtune.data.builtin import load_data
    from tailtune.data.types import Splits
    from tailtune.experiments.tune import tune

    out = tmp_path / "tuning"
    _user_folder(out / "best")
    with pytest.raises(TailTuneError, match=r"best: holds files that are not part of a tailtune run"):
        tune(tiny_model, Splits(load_data(str(tiny_data["train"]))), out, trials=1)
    assert _names(out) == ["best"]  # no study started
