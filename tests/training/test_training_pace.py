"""Prefetched batches, the clock-bounded learning-rate schedule and the class-offset
calibration after training."""

import threading
import time
import types

import numpy as np
import pytest

from edgeseg.data import DatasetLayout
from edgeseg.metrics import confusion_matrix, iou_report, mean_iou
from edgeseg.training import trainer
from edgeseg.training.calibrate import OFFSET_GRID, calibration_seconds, fit_class_offsets
from edgeseg.training.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from edgeseg.training.config import TrainConfig
from edgeseg.training.dataset import load_split
from edgeseg.training.ema import moving_average, warmed_decay
from edgeseg.training.plots import scored
from edgeseg.training.prefetch import prefetch
from edgeseg.training.trainer import _schedule, evaluate, next_epoch_seconds, train


def test_each_batch_is_made_from_its_own_stream_whoever_makes_it_and_in_any_order(synth_data, tmp_path):
    """What lets a worker process make any batch: batch k of (seed, epoch, rank) is the same made
    alone, out of order, as made in the epoch's turn; another epoch draws others."""
    import torch

    cfg = TrainConfig(data=str(synth_data), out=str(tmp_path), input_size=64, batch_size=4, oversample=2.0)
    batches = trainer.load_data(cfg, DatasetLayout.open(synth_data), 1).batches
    for rank, world in ((0, 1), (1, 2)):
        in_turn = list(batches.epoch(3, 7, rank, world))
        shares = batches.plan(3, 7, rank, world)
        assert len(shares) == len(in_turn) > 2
        for k in reversed(range(len(shares))):
            alone = batches.batch(shares[k], batches.batch_stream(3, 7, rank, k))
            assert torch.equal(alone[0], in_turn[k][0]) and torch.equal(alone[1], in_turn[k][1])
    assert not torch.equal(next(iter(batches.epoch(4, 7)))[0], in_turn[0][0])


def test_prefetch_yields_everything_in_order():
    assert list(prefetch(iter(range(50)), depth=2)) == list(range(50))


def test_prefetch_raises_the_producers_error_at_its_item():
    def items():
        yield 1
        yield 2
        raise ValueError("corrupt sample")

    seen = []
    with pytest.raises(ValueError, match="corrupt sample"):
        for item in prefetch(items()):
            seen.append(item)
    assert seen == [1, 2]


def test_prefetch_stopped_early_frees_its_thread():
    before = threading.active_count()
    batches = prefetch(iter(range(1000)), depth=2)
    assert next(batches) == 0
    batches.close()  # the consumer stops: the producer must not stay blocked on a full queue
    deadline = time.time() + 5
    while threading.active_count() > before and time.time() < deadline:
        time.sleep(0.01)
    assert threading.active_count() == before


def test_prefetch_stopped_with_its_end_marker_waiting_frees_its_thread():
    before = threading.active_count()
    batches = prefetch(iter(range(2)), depth=1)
    assert next(batches) == 0
    time.sleep(0.3)  # the producer has queued the last item and now waits to queue the end
    batches.close()
    deadline = time.time() + 5
    while threading.active_count() > before and time.time() < deadline:
        time.sleep(0.01)
    assert threading.active_count() == before


def test_schedule_warms_up_then_decays_to_zero_by_the_last_step():
    factor = _schedule(total_steps=100, warmup_steps=10)
    assert factor(0) == pytest.approx(0.1) and factor(9) == pytest.approx(1.0)
    assert factor(55) == pytest.approx(0.5) and factor(100) == pytest.approx(0.0)


def test_schedule_decays_to_zero_by_the_time_limit_when_that_comes_first():
    used = {"share": 0.0}
    factor = _schedule(total_steps=1000, warmup_steps=10, time_done=lambda: used["share"])
    assert factor(20) > 0.99  # early, by steps and by time
    used["share"] = 0.5
    assert factor(20) == pytest.approx(0.5)  # half the time gone: half way down the cosine
    used["share"] = 1.2
    assert factor(20) == 0.0  # past the limit: no more learning rate, whatever the step count


def test_next_epoch_is_expected_to_last_as_long_as_the_longer_of_the_last_two_of_its_size():
    assert next_epoch_seconds([], reduced=False) == 0.0
    history = [{"elapsed_s": 70.0}, {"elapsed_s": 120.0}, {"elapsed_s": 175.0}, {"elapsed_s": 227.0}]
    assert next_epoch_seconds(history, reduced=False) == pytest.approx(55.0)  # 55 and 52: the longer
    halved = [{"elapsed_s": 20.0, "half_size": True}, {"elapsed_s": 32.0, "half_size": True}]  # older runs' history
    assert next_epoch_seconds(halved, reduced=True) == pytest.approx(20.0)
    assert next_epoch_seconds(halved, reduced=False) == pytest.approx(48.0)  # first at full size: 4 x 12 s
    assert next_epoch_seconds(halved + [{"elapsed_s": 80.0}], reduced=False) == pytest.approx(48.0)
    three_quarters = [{"elapsed_s": 18.0, "reduced_size": 0.75}, {"elapsed_s": 36.0, "reduced_size": 0.75}]
    assert next_epoch_seconds(three_quarters, reduced=False) == pytest.approx(32.0)  # 18 s / 0.75^2


def fake_clock(monkeypatch, training_seconds: float, scoring_seconds: float) -> None:
    """The trainer's clock, advanced only by training epochs and val scores of the given lengths."""
    clock = {"now": 1000.0}
    monkeypatch.setattr(trainer, "time", types.SimpleNamespace(perf_counter=lambda: clock["now"]))
    real_evaluate = trainer.evaluate

    class TimedBatches(trainer.TrainBatches):
        def epoch(self, *args, **kwargs):
            clock["now"] += training_seconds
            return super().epoch(*args, **kwargs)

    def timed_evaluate(*args, **kwargs):
        clock["now"] += scoring_seconds
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(trainer, "evaluate", timed_evaluate)
    monkeypatch.setattr(trainer, "TrainBatches", TimedBatches)


def test_time_limit_stops_before_an_epoch_that_would_end_past_it(synth_data, tmp_path, monkeypatch):
    """Each epoch takes a minute on a fake clock; with a 3.5-minute limit the fourth would end at
    4 minutes, so the run stops after three, within the limit (it used to run the fourth)."""
    fake_clock(monkeypatch, 0.0, 60.0)
    result = train(TrainConfig(data=str(synth_data), out=str(tmp_path), input_size=64, epochs=10, batch_size=8,
                               arch_kwargs={"base": 8}, seed=1, max_minutes=3.5, calibrate=False),
                   show_progress=False)
    assert [h["elapsed_s"] for h in result.history] == [60.0, 120.0, 180.0]
    assert result.wall_seconds <= 3.5 * 60
    assert load_checkpoint(result.last_checkpoint)["epoch"] == 3


def test_calibration_is_expected_to_take_a_pass_over_train_and_val_at_the_evaluations_pace():
    # magnetic-tile on a Cascade Lake Xeon: 247 val images evaluated in 6.6 s; the calibration
    # then took 25 s for the 905 train images, 4 s for the fit and 6.6 s for val
    expected = calibration_seconds(6.6, 905, 247)
    assert 25 + 4 + 6.6 <= expected <= 1.15 * (25 + 4 + 6.6)
    assert calibration_seconds(13.2, 905, 247) == pytest.approx(2 * expected)  # a machine half as fast


def test_time_limit_leaves_room_for_the_calibration(synth_data, tmp_path, monkeypatch):
    """Epochs of a minute, of which the evaluation takes 12 s, and a calibration expected to
    take 45 s: with a 3.5-minute limit a third epoch would end at 3 minutes and the calibration
    at 3.75, so the run stops after two and calibrates within the limit."""
    fake_clock(monkeypatch, 48.0, 12.0)
    asked = []

    def calibration_in_45_s(eval_seconds, train_count, val_count):
        asked.append((eval_seconds, train_count, val_count))
        return 45.0

    monkeypatch.setattr(trainer, "calibration_seconds", calibration_in_45_s)
    result = train(TrainConfig(data=str(synth_data), out=str(tmp_path), input_size=64, epochs=10, batch_size=8,
                               arch_kwargs={"base": 8}, seed=1, max_minutes=3.5), show_progress=False)
    assert [h["elapsed_s"] for h in result.history] == [60.0, 120.0]
    assert [h["eval_s"] for h in result.history] == [12.0, 12.0]
    layout = DatasetLayout.open(synth_data)
    assert asked[-1] == (12.0, len(layout.split_stems("train")), len(layout.split_stems("val")))
    assert "class_offsets" in load_checkpoint(result.best_checkpoint)["meta"]  # and it calibrated


def test_reduced_epochs_can_go_unscored_and_the_last_is_scored_within_the_limit(synth_data, tmp_path, monkeypatch):
    """Epochs of 40 s and scores of 20 s on a fake clock, an 8-minute limit, the first half of it
    at half the side: the first epoch is scored, then reduced ones are not until the last (260 s:
    a full-size epoch is expected to take 40 s / 0.5^2 and its score, 280 + 91 s, within 480); the
    full-size epochs are, and the run stops when a fourth (60 s) would end at 500 s."""
    fake_clock(monkeypatch, 40.0, 20.0)
    result = train(TrainConfig(data=str(synth_data), out=str(tmp_path), input_size=64, epochs=20, batch_size=8,
                               arch_kwargs={"base": 8}, seed=1, max_minutes=8, calibrate=False,
                               reduced_size_share=0.5, evaluate_reduced_epochs=False), show_progress=False)
    history = result.history
    assert [h["elapsed_s"] for h in history] == [60.0, 100.0, 140.0, 180.0, 220.0, 260.0, 320.0, 380.0, 440.0]
    assert [h["epoch"] for h in scored(history)] == [1, 7, 8, 9]
    assert [bool(h.get("reduced_size")) for h in history] == [True] * 6 + [False] * 3
    assert load_checkpoint(result.best_checkpoint)["meta"]["epoch"] in (1, 7, 8, 9)
    assert result.best_metrics == max((h["val"] for h in scored(history)), key=lambda v: v["miou"])
    last = load_checkpoint(result.last_checkpoint)
    assert last["epoch"] == 9 and last["history"] == history


def test_moving_average_follows_the_model_closely_at_first_and_smooths_later():
    import torch

    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.BatchNorm2d(2))
    ema = moving_average(model, 0.995)
    weight = model[0].weight
    ema.update_parameters(model)  # the first update copies
    for _ in range(20):  # the weights move fast early in training
        with torch.no_grad():
            weight.add_(1.0)
        ema.update_parameters(model)
    # a fixed 0.995 would trail by about 19 of the 20; warmed up it trails by about 2
    lag = (weight - ema.module[0].weight).abs().max().item()
    assert 1 < lag < 4, lag
    assert warmed_decay(0.995, 0) == pytest.approx(0.1) and warmed_decay(0.995, 10_000) == 0.995
    model(torch.randn(4, 1, 3, 3))  # BatchNorm's statistics and batch count are averaged/kept too
    ema.update_parameters(model)
    assert ema.module[1].num_batches_tracked.item() == model[1].num_batches_tracked.item() == 1
    assert not torch.equal(ema.module[1].running_mean, torch.zeros(2))


def test_class_offsets_undo_a_shifted_score_and_never_make_it_worse():
    rng = np.random.default_rng(0)
    labels = rng.choice(3, size=20_000, p=[0.9, 0.05, 0.05]).astype(np.uint8)
    scores = rng.normal(0, 1, (labels.size, 3)).astype(np.float32)
    scores[np.arange(labels.size), labels] += 3.0  # a good model ...
    scores[:, 1] -= 2.0  # ... whose class 1 was pushed down by 2 (as too weak a class weight would)
    offsets, before, after = fit_class_offsets(scores, labels)
    assert offsets[0] == 0.0 and 1.0 <= offsets[1] <= 2.5 and offsets[1] > offsets[2] + 0.75
    assert after > before + 0.05
    calibrated, same, _ = fit_class_offsets(scores + offsets, labels)
    assert same == pytest.approx(after) and np.abs(calibrated).max() <= 0.25  # nothing left to gain


def _offsets_one_trial_at_a_time(scores, labels, sweeps=2, grid=OFFSET_GRID):
    """The fit written plainly: every trial value's prediction made and counted on its own."""
    n = scores.shape[1]
    offsets = np.zeros(n, np.float32)
    best = mean_iou(confusion_matrix(np.argmax(scores, axis=1), labels, n))
    for _ in range(sweeps):
        for c in range(1, n):
            others = scores + offsets
            others[:, c] = -np.inf
            other_class = np.argmax(others, axis=1)
            other_score = others[np.arange(len(others)), other_class]
            for value in grid:
                pred = np.where(scores[:, c] + value > other_score, c, other_class)
                score = mean_iou(confusion_matrix(pred, labels, n))
                if score > best + 1e-6:
                    best, offsets = score, offsets.copy()
                    offsets[c] = value
    return offsets, best


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_class_offsets_fit_in_one_pass_per_class_as_trial_by_trial(seed):
    rng = np.random.default_rng(seed)
    labels = rng.choice(5, size=30_000, p=[0.8, 0.1, 0.05, 0.04, 0.01]).astype(np.uint8)
    scores = rng.normal(0, 1.5, (labels.size, 5)).astype(np.float32)
    scores[np.arange(labels.size), labels] += 2.0
    scores += rng.normal(0, 1.5, 5).astype(np.float32)  # each class shifted by its own amount
    offsets, _, after = fit_class_offsets(scores, labels)
    expected, expected_after = _offsets_one_trial_at_a_time(scores, labels)
    np.testing.assert_array_equal(offsets, expected)
    assert after == pytest.approx(expected_after, abs=1e-9) and np.count_nonzero(offsets) >= 2


def test_calibration_is_folded_into_the_checkpoint_and_measured(synth_data, tmp_path):
    cfg = TrainConfig(data=str(synth_data), out=str(tmp_path), input_size=64, epochs=2, batch_size=8,
                      arch_kwargs={"base": 8}, seed=0, lr=5e-3, bf16="off")
    result = train(cfg, show_progress=False)
    state = load_checkpoint(result.best_checkpoint)
    meta = state["meta"]
    assert len(meta["class_offsets"]) == 5 and meta["class_offsets"][0] == 0.0
    assert meta["calibration"]["train_miou_after"] >= meta["calibration"]["train_miou_before"]
    assert "metrics_before_calibration" in meta and result.best_metrics == meta["metrics"]
    # the saved model carries the offsets: measuring it again gives the recorded figures
    layout = DatasetLayout.open(synth_data)
    images, masks, _ = load_split(layout, "val", 1, 64, train=False)
    confusion = evaluate(model_from_checkpoint(state), images, masks, meta["normalization"]["mean"],
                         meta["normalization"]["std"], layout.classes.num_classes)
    assert iou_report(confusion, layout.classes.names)["miou"] == pytest.approx(meta["metrics"]["miou"])


def test_calibration_strength_applies_that_share_of_the_fitted_offsets(synth_data, tmp_path):
    import torch

    from edgeseg.training.calibrate import calibrate_checkpoint

    cfg = TrainConfig(data=str(synth_data), out=str(tmp_path / "run"), input_size=64, epochs=2, batch_size=8,
                      arch_kwargs={"base": 8}, seed=0, lr=5e-3, bf16="off", calibrate=False)
    result = train(cfg, show_progress=False)
    # class 1 pushed up everywhere (as far as the fit reaches): a fit that must move it back, whatever
    # two epochs happened to learn (a model that finds only background leaves nothing to fit)
    biased = load_checkpoint(result.best_checkpoint)
    biased["model"]["head.bias"][1] += 6.0
    layout = DatasetLayout.open(synth_data)
    train_split = load_split(layout, "train", 1, 64, train=True)[:2]
    val_split = load_split(layout, "val", 1, 64, train=False)[:2]
    bias = {}
    for strength in (1.0, 0.5):
        path = tmp_path / f"calibrated_{strength}.pt"
        save_checkpoint(path, biased)
        calibrate_checkpoint(path, train_split, val_split, bf16=False, show_progress=False, strength=strength)
        state = load_checkpoint(path)
        calibration = state["meta"]["calibration"]
        assert calibration["strength"] == strength
        assert state["meta"]["class_offsets"] == pytest.approx([strength * v for v in calibration["fitted_offsets"]],
                                                              abs=1e-3)
        bias[strength] = state["model"]["head.bias"]
    assert calibration["fitted_offsets"][1] < 0  # the fit took back some of the push
    original = biased["model"]["head.bias"]
    torch.testing.assert_close(bias[0.5] - original, (bias[1.0] - original) / 2)


@pytest.mark.parametrize("strength", [0.0, 1.5])
def test_calibration_strength_outside_its_range_is_a_config_error(strength):
    from edgeseg.errors import ConfigError

    with pytest.raises(ConfigError, match="calibration_strength"):
        TrainConfig(data="x", calibration_strength=strength).validate()
