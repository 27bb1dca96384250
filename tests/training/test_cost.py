"""Tests of the price of a run: the estimate from a probe, a plan shrunk to fit a time budget, the hook that stops
training in time, and what metrics.json and the command line say of them.

The probe is replaced by one of known costs where a test needs exact numbers (:class:`FakeProbe`); one run probes
for real (the command line's).
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
from conftest import make_texts, run_cli

import tailtune.training.cost as cost
from tailtune.data.types import Splits
from tailtune.data.values import dataset_from_values
from tailtune.models.transformer import load_classifier
from tailtune.runs.train import train_run
from tailtune.strategies import build_run_config
from tailtune.training.batching import encode
from tailtune.training.budget import FILL, BudgetStop
from tailtune.training.loop import StageHooks, make_accelerator, train_stages
from tailtune.training.probe import StepCost
from tailtune.training.selection import EpochSelector, Score

LABELS = ["money", "sport", "tech"]


class FakeProbe:
    """A probe of known costs: a step costs ``STEPS`` seconds by scope, prediction ``PREDICT`` seconds a token;
    every text has ``LENGTH`` tokens."""

    STEPS, PREDICT, LENGTH = {"all": 1.0, "top3": 0.1, "top1": 0.05}, 1e-3, 10

    def __init__(self, config, labels, train, label_ids, accelerator, class_counts, task=None) -> None:
        self.config = config
        self.lengths = np.full(min(len(train), 1000), self.LENGTH)
        self.specials, self.seconds, self.load_s, self.save_s = 2, 0.5, 1.0, 0.5
        self.encode_per_text, self.predict_per_token = 0.0, self.PREDICT

    def trains(self, scope):
        return True

    def step(self, trainable, batch_size, max_length, widths):
        return StepCost(trainable, trainable != "all", batch_size, self.STEPS[trainable], 0.0)

    def record(self):
        return {"seconds": self.seconds, "load_s": self.load_s, "fake": True}

    def close(self):
        pass


@pytest.fixture
def fake_probe(monkeypatch):
    monkeypatch.setattr(cost, "Probe", FakeProbe)
    monkeypatch.setattr(cost, "MIN_PROBED_BUDGET", 0.0)  # the fake probe costs nothing: small budgets are priced


def _train_data(counts: dict[str, int], seed: int = 0):
    texts, labels = make_texts(counts, seed=seed)
    return dataset_from_values(texts, labels, source="test")


def _plan(config, train, *, fallback=False, hooks=(), started=None):
    ids = np.array([LABELS.index(label) for label in train.labels])
    counts = np.bincount(ids, minlength=3).tolist()
    sizes = cost.Sizes(selection=len(train), validation=20, all=len(train) + 20, evaluated=[30])
    refit = {"done": True, "reason": "refit is true"}
    return cost.plan_run(config, train, ids, LABELS, counts, None, sizes, refit=refit,
                         validation={"source": "carved", "size": 20, "train": len(train)},
                         started=time.perf_counter() if started is None else started,
                         fallback=fallback, hooks=hooks)  # fmt: skip


def test_estimate_adds_up_the_plan(fake_probe):
    """Steps from the data size, batch size and step budget, times the probed step cost; validation passes per
    epoch; the refit repeats every stage on all the data."""
    train = _train_data({"sport": 60, "tech": 30, "money": 10})  # 100 texts: 7 batches of 16
    config = build_run_config("m", "two-stage", settings={"max_length": 32})
    plan = _plan(config, train)
    stage1, stage2 = plan.estimate.stages
    assert (stage1["steps_per_epoch"], stage1["epochs"], stage1["steps"]) == (7, 20, 140)  # min_steps 200, at most 20
    assert (stage2["epochs"], stage2["steps"]) == (10, 70)  # min_steps 100 raises the epochs to 15, at most 10
    assert stage1["cached"] and not stage2["cached"]
    assert stage1["seconds"] == pytest.approx(140 * 0.05) and stage2["seconds"] == pytest.approx(70 * 1.0)
    one_pass = 20 * 10 * FakeProbe.PREDICT  # 20 validation texts of 10 tokens
    assert stage2["validation_s"] == pytest.approx(10 * one_pass)
    refit1, refit2 = plan.estimate.refit_stages  # 120 texts: 8 batches, the epochs selection planned
    assert (refit1["steps"], refit2["steps"]) == (160, 80)
    parts = plan.estimate.parts
    assert parts["refit"] == pytest.approx(160 * 0.05 + 80 * 1.0)
    assert parts["evaluate"] == pytest.approx(30 * 10 * FakeProbe.PREDICT)
    assert parts["load"] == 2.0  # the selection model and the refit's
    assert plan.record()["estimate_s"] == pytest.approx(plan.estimate.total, abs=0.1)
    assert plan.budget is None and plan.stopper is None


def test_plan_shrinks_to_fit_a_small_budget(fake_probe):
    """Under a budget the refit goes first, then epochs of full fine-tuning, until the estimate fits."""
    train = _train_data({"sport": 60, "tech": 30, "money": 10})
    config = build_run_config("m", "two-stage", settings={"max_length": 32, "time_budget": 60})
    started = time.perf_counter()
    plan = _plan(config, train, started=started)
    assert plan.budget.chosen == "shrunk"
    assert plan.budget.changes[0] == "refit skipped"
    assert plan.budget.changes[-1] == "stage2 at most 5 epoch(s)"  # 10 -> 5 epochs of 7 one-second steps fit
    assert plan.estimate.total <= FILL * 60 < plan.budget.planned_s
    assert plan.config.stages[1].epochs == 5 and plan.config.stages[1].min_steps == 0
    assert plan.config.stages[0] == config.stages[0]  # the cheap top-layer stage is kept
    assert not plan.refit["done"] and "skipped to fit the time budget" in plan.refit["reason"]
    assert plan.stopper is not None and plan.stopper.deadline == started + 60
    record = plan.record()
    assert record["budget"]["changes"] == plan.budget.changes and record["budget"]["budget_s"] == 60


def test_plan_narrows_full_stages_then_falls_back_to_tfidf(fake_probe):
    """Where one epoch at the shortest length does not fit, full stages train their top layers; where nothing
    fine-tuned fits, the tfidf strategy (or, without a fallback, the cheapest plan)."""
    train = _train_data({"sport": 60, "tech": 30, "money": 10})
    narrow = _plan(build_run_config("m", "vanilla", settings={"max_length": 128, "time_budget": 8}), train)
    assert narrow.budget.chosen == "shrunk"
    assert narrow.config.stages[0].trainable == "top3" and "finetune on the top3 layers only" in narrow.budget.changes
    tiny = build_run_config("m", "two-stage", settings={"max_length": 128, "time_budget": 3})
    fallen = _plan(tiny, train, fallback=True)
    assert fallen.budget.chosen == "tfidf" and fallen.fallback.strategy == "tfidf"
    assert "nothing fine-tuned fits" in fallen.budget.reason
    cheapest = _plan(tiny, train, fallback=False)
    assert cheapest.budget.chosen == "cheapest" and cheapest.fallback is None
    assert cheapest.config.stages[1].trainable == "top1" and cheapest.config.stages[1].epochs == 1


def test_hooks_hear_the_plan(fake_probe):
    heard = []

    class Listener(StageHooks):
        def on_plan(self, plan):
            heard.append(plan)

    train = _train_data({"sport": 20, "tech": 10, "money": 5})
    _plan(build_run_config("m", "vanilla", settings={"max_length": 32}), train, hooks=[Listener()])
    assert len(heard) == 1 and heard[0]["plan"]["strategy"] == "vanilla" and "actual_s" not in heard[0]
    assert heard[0]["estimate_s"] > 0 and heard[0]["plan"]["stages"][0]["steps"] > 0


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_budget_stop_keeps_time_for_a_step_validation_and_the_end():
    clock = _Clock()
    plans = {"train": [{"cache_s": 0.0, "step_s": 1.0, "validation_pass_s": 2.0}], "refit": []}
    stop = BudgetStop(deadline=20.0, reserve=5.0, stages=plans, clock=clock)
    stage = build_run_config("m", "vanilla").stages[0]
    assert not stop.on_step(0, stage, 0)  # 15 s before the reserve; a step and a validation pass need 3
    for now, step in ((1.0, 1), (2.0, 2), (12.0, 3)):  # steps of 1, 1 and 10 s: their median, 1 s, is a step
        clock.now = now
        assert not stop.on_step(0, stage, step)  # at 12 s, 3 s are left: just enough
    clock.now = 12.5
    assert stop.on_step(0, stage, 4)  # 2.5 s left
    assert stop.halted and stop.stopped["step"] == 4 and stop.stopped["phase"] == "train"
    assert stop.on_step(1, stage, 0)  # the stages after it do not start
    assert stop.refit_fits(2.0) == (True, "")
    assert not stop.refit_fits(10.0)[0] and "the refit needs about 10 s" in stop.refit_fits(10.0)[1]
    stop.start_phase("refit")
    assert not stop.halted and not stop.on_step(0, stage, 0)


def test_a_hook_ending_training_keeps_the_best_epoch_and_skips_later_stages(tiny_model):
    """Training ended mid-stage: selection scores the steps since its last evaluation, the stage keeps its best
    weights, and the next stage does not run."""
    texts, labels = make_texts({"sport": 16, "tech": 8, "money": 8}, seed=1)
    ids = np.array([LABELS.index(label) for label in labels])
    model, tokenizer = load_classifier(tiny_model, LABELS)
    data = encode(tokenizer, texts, ids, max_length=16)
    config = build_run_config(tiny_model, "two-stage", settings={"max_length": 16, "batch_size": 8, "epochs": 3,
                                                                 "min_steps": 0, "feature_cache": False})  # fmt: skip
    config = config.replace(stages=[config.stages[1], config.stages[0]])  # full stage first, 4 steps an epoch
    scores = iter([0.9, 0.2, 0.1])
    selector = EpochSelector(model, lambda: Score(next(scores)), patience=None)
    best = {}

    class EndAfterSix(StageHooks):
        def on_step(self, stage_index, stage, step):
            return stage_index == 1 or step == 6

        def on_epoch_end(self, stage_index, stage, epoch, planned):
            if epoch == 1:
                best.update({n: p.detach().clone() for n, p in model.named_parameters()})
            return False

    reports = train_stages(model, data, np.bincount(ids).tolist(), config, make_accelerator(config),
                           hooks=[selector, EndAfterSix()], show_progress=False)  # fmt: skip
    assert [(r.name, r.steps) for r in reports] == [("stage2", 6)]
    assert selector.choices[0].positions == [1, 1.5] and selector.choices[0].best_epoch == 1
    for name, param in model.named_parameters():
        assert torch.equal(param, best[name]), name


def test_train_run_records_estimate_actual_and_the_budget(fake_probe, tiny_model, tiny_data, tmp_path):
    """metrics.json records the estimate, the time taken and what the budget decided; the refit it skipped says so."""
    from tailtune.data.readers import read_dataset

    splits = Splits(read_dataset(tiny_data["train"]), test=read_dataset(tiny_data["test"]))
    config = build_run_config(tiny_model, "vanilla", settings={"batch_size": 16, "time_budget": 30})
    metrics = train_run(config, splits, tmp_path / "run", show_progress=False)
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    record = saved["cost"]
    assert record["estimate_s"] > 0 and record["actual_s"] == saved["wall_time_s"]
    assert record["budget"]["chosen"] == "shrunk" and record["budget"]["changes"][0] == "refit skipped"
    assert record["plan"]["stages"][0]["epochs"] < 10  # vanilla on 51 texts plans 10 epochs of 4 one-second steps
    assert saved["refit"]["done"] is False and "time budget" in saved["refit"]["reason"]
    assert metrics["cost"] == record


def test_train_run_falls_back_to_tfidf(fake_probe, tiny_model, tiny_data, tmp_path):
    """Where nothing fine-tuned fits the budget, the run trains the tfidf strategy and says why."""
    from tailtune.data.readers import read_dataset

    splits = Splits(read_dataset(tiny_data["train"]), test=read_dataset(tiny_data["test"]))
    config = build_run_config(tiny_model, "two-stage", settings={"time_budget": 2})
    metrics = train_run(config, splits, tmp_path / "run", show_progress=False)
    assert (tmp_path / "run" / "model" / "tailtune.json").is_file()  # a TF-IDF model folder
    assert [stage["name"] for stage in metrics["stages"]] == ["tfidf"]
    assert metrics["cost"]["budget"]["chosen"] == "tfidf"
    assert metrics["cost"]["plan"]["family"] == "tfidf" and metrics["cost"]["actual_s"] == metrics["wall_time_s"]


def test_cli_prints_the_plan_and_estimate_before_training(capsys, tiny_model, tiny_data, tmp_path):
    """train probes for real, prints the plan and its estimate before training, and how they compared after."""
    code, out, err = run_cli(capsys, "train", "--model", tiny_model, "--train", tiny_data["train"], "--test",
                             tiny_data["test"], "--output", tmp_path / "run", "--strategy", "vanilla", "--epochs",
                             "1", "--min-steps", "0", "--batch-size", "16")  # fmt: skip
    assert code == 0
    plan = err.index("plan: vanilla, max_length ")
    assert "  finetune (all): 1 epoch(s) x 4 steps, batch 16, about" in err
    assert err.index("estimate: about ", plan) > plan
    assert "from a " in err and "probe of real training steps" in err
    assert err.index("time: took ", plan) > plan and ", estimated " in err
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())["cost"]
    probed = record["probe"]["steps"]
    assert [(s["trainable"], s["cached"]) for s in probed] == [("all", False)]
    assert probed[0]["per_token"] > 0 or probed[0]["per_step"] > 0
    assert record["budget"] is None and record["estimate_s"] > 0


def test_tune_budget_keeps_the_final_run_its_share():
    """A search's budget: half is kept for the final run until a trial has taken its time, then that trial's time
    scaled to all the data (and doubled for a refit); the search stops when no further trial fits."""
    from tailtune.experiments.tune import TuneBudget

    clock = _Clock()
    budget = TuneBudget(100.0, clock=clock)
    budget.scale_final(1.25, refits=True)
    assert budget.for_trial() == 50.0  # nothing measured yet: half for the final run
    clock.now = 10.0
    budget.trial_done(10.0)
    assert budget.final_share() == 25.0 and budget.for_trial() == 65.0  # 100 - 10 spent - 25 kept
    stopped = []
    study = type("Study", (), {"trials": [1], "stop": lambda self: stopped.append(True)})()
    budget.stop_when_spent(study, None)
    assert not stopped
    clock.now = 70.0  # 5 s left of the search: less than the shortest trial
    budget.stop_when_spent(study, None)
    assert stopped and "5 s were left" in budget.stopped
    assert budget.for_final() == 30.0


class _NoProbe:
    def __init__(self, *args, **kwargs) -> None:
        raise AssertionError("probed although nothing asked for the estimate")


def test_a_plain_library_run_does_not_probe(monkeypatch, tiny_model, tiny_data, tmp_path):
    """Without a time budget or a hook that hears the plan, nothing is probed and metrics.json's cost is null."""
    monkeypatch.setattr(cost, "Probe", _NoProbe)
    config = build_run_config(tiny_model, "vanilla", settings={"batch_size": 16, "epochs": 1, "min_steps": 0})
    metrics = train_run(config, _splits(tiny_data), str(tmp_path / "run"))
    assert metrics["cost"] is None


class _Heard(StageHooks):
    def __init__(self) -> None:
        self.plans = []

    def on_plan(self, plan):
        self.plans.append(plan)


def test_a_budget_under_the_floor_falls_back_without_probing(monkeypatch, tiny_model, tiny_data, tmp_path):
    """A budget too short to probe and fine-tune trains tfidf at once; the hooks hear only the plan that runs."""
    monkeypatch.setattr(cost, "Probe", _NoProbe)
    heard = _Heard()
    config = build_run_config(tiny_model, "two-stage", settings={"time_budget": 15})
    metrics = train_run(config, _splits(tiny_data), str(tmp_path / "run"), hooks=[heard])
    assert metrics["cost"]["budget"]["chosen"] == "tfidf" and "no room to probe" in metrics["cost"]["budget"]["reason"]
    assert [plan["plan"]["family"] for plan in heard.plans] == ["tfidf"] and heard.plans[0]["budget"]


def test_a_slow_model_load_ends_the_probe_early(fake_probe, monkeypatch):
    """Where loading the model alone takes too much of the budget, tfidf trains without timing any step."""

    class SlowLoad(FakeProbe):
        def __init__(self, *args) -> None:
            super().__init__(*args)
            self.load_s = 40.0

        def step(self, *args):
            raise AssertionError("timed steps although the load showed fine-tuning cannot fit")

    monkeypatch.setattr(cost, "Probe", SlowLoad)
    train = _train_data({"sport": 60, "tech": 30, "money": 10})
    plan = _plan(build_run_config("m", "vanilla", settings={"max_length": 32, "time_budget": 70}), train, fallback=True)
    assert plan.fallback.strategy == "tfidf" and "loading the model took" in plan.budget.reason


def test_outcome_line_says_when_the_budget_was_overrun():
    from tailtune.cli.cost import outcome_line

    budget = {"budget_s": 15.0, "chosen": "tfidf", "stopped": None}
    assert outcome_line({"actual_s": 35.0, "estimate_s": 30.0, "budget": budget}).endswith(
        "over the 15 s budget by 20 s"
    )
    assert "over" not in outcome_line({"actual_s": 10.0, "estimate_s": 9.0, "budget": budget})


def _splits(tiny_data):
    from tailtune.data.readers import read_dataset

    return Splits(read_dataset(tiny_data["train"]), test=read_dataset(tiny_data["test"]))


def test_the_plan_says_where_the_step_budget_sets_the_epochs():
    """With --epochs 1, a stage of small data runs 8 epochs for its step budget: the plan line says why."""
    from tailtune.cli.cost import _stage_text

    stage = {"name": "stage1", "trainable": "top1", "cached": True, "epochs": 8, "steps_per_epoch": 25,
             "batch_size": 16, "seconds": 50.0, "validation_s": 2.0, "min_steps": 200}  # fmt: skip
    assert _stage_text(stage) == ("stage1 (top1, on cached features): 8 epoch(s) x 25 steps (its budget of at least "
                                  "200 steps), batch 16, about 52 s")  # fmt: skip
    assert _stage_text({**stage, "epochs": 1, "min_steps": None}) == (
        "stage1 (top1, on cached features): 1 epoch(s) x 25 steps, batch 16, about 52 s")  # fmt: skip
