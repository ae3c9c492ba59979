import json
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from edgeseg.data import DatasetLayout
from edgeseg.errors import CheckpointError, ConfigError
from edgeseg.metrics import iou_report
from edgeseg.models import build_model, get_architecture
from edgeseg.training import trainer
from edgeseg.training.augment import AugmentConfig
from edgeseg.training.checkpoint import load_checkpoint, model_from_checkpoint
from edgeseg.training.config import TrainConfig
from edgeseg.training.dataset import (
    TrainBatches,
    area_factors,
    class_weights,
    epoch_indices,
    load_split,
    repeat_factors,
)
from edgeseg.training.losses import SegmentationLoss, dice_loss, label_shares
from edgeseg.training.progressive import reduced_shape
from edgeseg.training.trainer import evaluate, train


def test_rare_classes_get_more_weight_and_more_draws():
    weights = class_weights(np.array([1_000_000, 10_000, 100]), "sqrt", max_weight=50)
    assert weights[0] == 1.0 and weights[0] < weights[1] < weights[2] <= 50
    present = np.array([[1, 0, 0], [1, 1, 0], [1, 1, 0], [1, 0, 1]] * 5, bool)
    factors = repeat_factors(present, threshold=0.8, background_only=0.5)
    assert factors[3] > factors[1] > 1.0 and factors[0] == 0.5
    counts = np.bincount(epoch_indices(factors, np.random.default_rng(0)), minlength=len(factors))
    assert counts[3] >= counts[1] >= 1


def test_sampling_by_area_draws_a_photo_as_often_as_its_pixels_count():
    images = [np.zeros((200, 300), np.uint8), np.zeros((400, 300), np.uint8), np.zeros((200, 150), np.uint8)]
    factors = area_factors(images)
    np.testing.assert_allclose(factors, [6, 12, 3] / np.float64(7))
    np.testing.assert_allclose(area_factors([np.zeros((64, 48), np.uint8)] * 3), 1.0)  # one size: no change
    rng = np.random.default_rng(0)
    counts = sum(np.bincount(epoch_indices(factors, rng), minlength=3) for _ in range(300))
    assert 1.8 < counts[1] / counts[0] < 2.2 and 1.8 < counts[0] / counts[2] < 2.2


def test_the_trainer_draws_larger_photos_more_only_when_asked(synth_data, tmp_path):
    import shutil

    import cv2

    root = tmp_path / "data"
    shutil.copytree(synth_data, root)
    train_stems = (root / "train.txt").read_text().split()
    for folder in ("images", "masks"):
        for stem in train_stems[::2]:  # every other train photo twice the side: four times the pixels
            path = next((root / folder).glob(stem + ".*"))
            image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            cv2.imwrite(str(path), cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST_EXACT))
    layout = DatasetLayout.open(root)
    by_area = {flag: trainer.load_data(TrainConfig(data=str(root), out=str(tmp_path), input_size=128, oversample=0,
                                                    sample_by_area=flag), layout, 1).batches.factors
               for flag in (False, True)}
    np.testing.assert_array_equal(by_area[False], 1.0)
    pixels = np.array([cv2.imread(str(s.image), cv2.IMREAD_UNCHANGED).size for s in layout.samples("train")])
    assert pixels.max() > 3 * pixels.min()
    np.testing.assert_allclose(by_area[True], pixels / pixels.mean())


def test_dice_is_zero_for_a_perfect_prediction_and_ignores_unlabelled():
    target = torch.tensor([[[0, 1], [1, 255]]])
    logits = torch.nn.functional.one_hot(target.clamp(max=1), 2).permute(0, 3, 1, 2).float() * 50
    logits[0, :, 1, 1] = torch.tensor([-50.0, 50.0])  # wrong on the ignored pixel: must not matter
    assert dice_loss(logits, target).item() < 1e-3


def test_dice_of_an_all_unlabelled_batch_is_zero_not_nan():
    loss = dice_loss(torch.randn(1, 3, 4, 4, requires_grad=True), torch.full((1, 4, 4), 255))
    assert loss.item() == 0.0


def _reference_loss(logits, target, weights):
    """Cross-entropy as torch computes it, plus soft dice over a one-hot target, op by op."""
    ce = torch.nn.functional.cross_entropy(logits, target, weight=weights, ignore_index=255)
    valid = (target != 255).unsqueeze(1)
    probs = logits.softmax(1) * valid
    onehot = torch.nn.functional.one_hot(target.clamp(max=logits.shape[1] - 1), logits.shape[1])
    onehot = onehot.permute(0, 3, 1, 2) * valid
    pixels = onehot.sum((0, 2, 3))
    dice = (2 * (probs * onehot).sum((0, 2, 3)) + 1) / (probs.sum((0, 2, 3)) + pixels + 1)
    return ce + 1 - dice[pixels > 0].mean()


def _random_batch(seed: int):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, 5, 12, 10, generator=g) * 3
    target = torch.randint(0, 4, (3, 12, 10), generator=g)  # class 4 absent: left out of the dice
    target[:, :2] = 255
    return logits, target


@pytest.mark.parametrize("channels_last", [False, True])
def test_the_loss_matches_cross_entropy_plus_dice_computed_op_by_op(channels_last):
    logits, target = _random_batch(0)
    if channels_last:
        logits = logits.contiguous(memory_format=torch.channels_last)
    weights = torch.tensor([1.0, 2.0, 3.0, 1.5, 2.5])
    ours, ref = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    loss = SegmentationLoss("ce+dice", weights)(ours, target)
    expected = _reference_loss(ref, target, weights)
    loss.backward()
    expected.backward()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    torch.testing.assert_close(ours.grad, ref.grad, rtol=1e-4, atol=1e-7)
    ce_only = SegmentationLoss("ce", None)(logits, target)
    assert ce_only.item() == pytest.approx(torch.nn.functional.cross_entropy(logits, target, ignore_index=255).item(),
                                           rel=1e-5)


def test_the_compiled_loss_gives_the_same_loss_and_gradients():
    logits, target = _random_batch(1)
    weights = torch.tensor([1.0, 2.0, 3.0, 1.5, 2.5])
    eager, fused = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    expected = SegmentationLoss("ce+dice", weights)(eager, target)
    compiled = SegmentationLoss("ce+dice", weights, compiled=True)
    assert compiled.compiled  # CI installs g++; without it the loss would quietly run op by op
    loss = compiled(fused, target)
    expected.backward()
    loss.backward()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    torch.testing.assert_close(fused.grad, eager.grad, rtol=1e-4, atol=1e-7)


def _blocks(tensor: torch.Tensor, factor: int) -> torch.Tensor:
    return tensor.repeat_interleave(factor, -1).repeat_interleave(factor, -2)


def test_the_loss_at_half_the_side_scores_each_block_by_its_class_shares():
    logits, target = _random_batch(2)  # a random class per pixel: blocks of mixed labels
    weights = torch.tensor([1.0, 2.0, 3.0, 1.5, 2.5])
    full_target = _blocks(target, 2)
    full_target[0, 0, 0] = 255  # one block partly unlabelled
    # the cross-entropy of scores that are constant over each block is the same computed either way
    at_half = SegmentationLoss("ce", weights)(logits, full_target)
    assert at_half.item() == pytest.approx(SegmentationLoss("ce", weights)(_blocks(logits, 2), full_target).item(),
                                           rel=1e-5)
    with pytest.raises(ValueError, match="not the target"):
        SegmentationLoss("ce", weights)(logits[..., :4], full_target)


@pytest.mark.parametrize("factor", [2, 4])
def test_label_shares_are_each_classs_pixels_in_a_block_over_the_blocks_pixels(factor):
    target = torch.randint(0, 4, (2, 9, 13), generator=torch.Generator().manual_seed(4))  # a last odd row, column
    target[0, :2, :2] = 255  # ignored: counted for no class
    target[1, 0, 0] = 9  # an id past the last class counts as the last
    shares = label_shares(target, 5, factor)
    assert shares.shape == (2, 9 // factor, 13 // factor, 5)
    labels = target.clamp(max=4)
    for n, row, col in [(0, 0, 0), (1, 0, 0), (1, 1, 2)]:
        block = labels[n, row * factor:(row + 1) * factor, col * factor:(col + 1) * factor].flatten()
        block = block[target[n, row * factor:(row + 1) * factor, col * factor:(col + 1) * factor].flatten() != 255]
        expected = torch.bincount(block, minlength=5).float() / factor**2
        torch.testing.assert_close(shares[n, row, col], expected)
    assert shares[0, 0, 0].sum().item() == pytest.approx(0.0 if factor == 2 else 0.75)
    assert shares[1, 0, 0, 4].item() >= 1 / factor**2


@pytest.mark.parametrize("compiled", [False, True])
def test_blocks_of_one_label_score_as_that_label_at_the_lower_resolution(compiled):
    logits, target = _random_batch(3)
    weights = torch.tensor([1.0, 2.0, 3.0, 1.5, 2.5])
    low, high = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    expected = SegmentationLoss("ce+dice", weights)(low, target)
    loss = SegmentationLoss("ce+dice", weights, compiled=compiled)(high, _blocks(target, 4))
    expected.backward()
    loss.backward()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    torch.testing.assert_close(high.grad, low.grad, rtol=1e-4, atol=1e-7)


def test_training_writes_a_safe_checkpoint_with_everything_export_needs(trained_run):
    state = load_checkpoint(trained_run.best_checkpoint)
    meta = state["meta"]
    assert meta["arch"] == "unet" and meta["input"]["channels"] == 1 and meta["input"]["height"] == 64
    assert [c["name"] for c in meta["classes"]][:2] == ["background", "pit"]
    assert len(meta["normalization"]["mean"]) == 1 and meta["metrics"]["miou"] >= 0
    assert model_from_checkpoint(state)(torch.zeros(1, 1, 64, 64)).shape == (1, 5, 64, 64)
    text = (trained_run.best_checkpoint.parent / "history.json").read_text()
    history = json.loads(text)
    assert [h["epoch"] for h in history] == [1, 2]
    assert len(text.splitlines()) == len(history) + 2  # one epoch per line: kept beside results
    assert (trained_run.best_checkpoint.parent / "iou.png").stat().st_size > 1000


def test_plots_are_written_with_a_palette_of_a_few_dozen_colours(trained_run):
    """Plots are tracked beside the results: quantized, each a third of a full-colour PNG."""
    from PIL import Image

    with Image.open(trained_run.best_checkpoint.parent / "iou.png") as plot:
        assert plot.mode == "P" and plot.size[0] > 1000
        assert len(plot.getcolors()) <= 64


def test_training_learns_the_synthetic_defects(synth_data, tmp_path):
    cfg = TrainConfig(data=str(synth_data), out=str(tmp_path), input_size=64, epochs=6, batch_size=8,
                      arch_kwargs={"base": 8}, seed=0, lr=5e-3)
    result = train(cfg, show_progress=False)
    first, best = result.history[0]["val"], result.best_metrics
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert best["miou"] > first["miou"] and best["per_class_iou"]["background"] > 0.8


def test_resume_continues_where_it_stopped(synth_data, tmp_path):
    common = dict(data=str(synth_data), out=str(tmp_path), input_size=64, batch_size=8,
                  arch_kwargs={"base": 8}, seed=2)
    train(TrainConfig(epochs=1, **common), show_progress=False)
    resumed = train(TrainConfig(epochs=2, **common), resume=True, show_progress=False)
    assert [h["epoch"] for h in resumed.history] == [1, 2]


def test_moving_average_is_what_is_evaluated_kept_and_resumed(synth_data, tmp_path):
    common = dict(data=str(synth_data), out=str(tmp_path), input_size=64, batch_size=8,
                  arch_kwargs={"base": 8}, seed=3, ema_decay=0.9, bf16="off")
    first = train(TrainConfig(epochs=1, **common), show_progress=False)
    best, last = load_checkpoint(first.best_checkpoint), load_checkpoint(first.last_checkpoint)
    name = next(k for k in best["model"] if k.endswith("weight"))
    assert not torch.equal(best["model"][name], last["model"][name])  # averaged, not the raw weights
    model = model_from_checkpoint(best)
    layout = DatasetLayout.open(synth_data)
    images, masks, _ = load_split(layout, "val", best["meta"]["input"]["channels"], 64, train=False)
    norm = best["meta"]["normalization"]
    confusion = evaluate(model, images, masks, norm["mean"], norm["std"], layout.classes.num_classes)
    assert iou_report(confusion, layout.classes.names)["miou"] == pytest.approx(best["meta"]["metrics"]["miou"])
    resumed = train(TrainConfig(epochs=2, **common), resume=True, show_progress=False)
    assert [h["epoch"] for h in resumed.history] == [1, 2]


def test_resume_without_a_run_is_a_clear_error(synth_data, tmp_path):
    with pytest.raises(CheckpointError, match="nothing to resume"):
        train(TrainConfig(data=str(synth_data), out=str(tmp_path / "new"), input_size=64, epochs=1),
              resume=True, show_progress=False)


def test_seeded_runs_are_identical(synth_data, tmp_path):
    common = dict(data=str(synth_data), input_size=64, epochs=1, batch_size=8, arch_kwargs={"base": 8},
                  seed=5, bf16="off")
    a = train(TrainConfig(out=str(tmp_path / "a"), **common), show_progress=False)
    b = train(TrainConfig(out=str(tmp_path / "b"), **common), show_progress=False)
    assert a.history[0]["train_loss"] == b.history[0]["train_loss"]


def test_a_reduced_batch_is_the_same_view_of_each_photo_in_fewer_pixels():
    rng = np.random.default_rng(3)
    masks = [np.kron(rng.integers(0, 3, (6, 6)), np.ones((16, 16), np.int64)).astype(np.uint8) for _ in range(4)]
    images = [(m * 80 + 20).astype(np.uint8) for m in masks]
    batches = TrainBatches(images, masks, (96, 96), 4, np.ones(4), AugmentConfig(noise_std=0.0), [0.5], [0.25])
    share = batches.plan(0, seed=1)[0]
    full_x, full_y = batches.batch(share, batches.batch_stream(0, 1, 0, 0))
    small_x, small_y = batches.batch(share, batches.batch_stream(0, 1, 0, 0), reduced_shape(96, 96, 0.625, 16))
    assert small_x.shape == (4, 1, 64, 64) and small_y.shape == (4, 64, 64) and small_y.dtype == torch.int64
    # the full-size batch scaled down as a station scales masks: the same labels almost everywhere
    scaled = np.stack([cv2.resize(m.numpy().astype(np.uint8), (64, 64), interpolation=cv2.INTER_NEAREST_EXACT)
                       for m in full_y])
    assert (scaled == small_y.numpy()).mean() > 0.9
    assert set(np.unique(small_y.numpy())) <= {0, 1, 2}  # labels are picked, never blended
    assert abs(small_x.mean().item() - full_x.mean().item()) < 0.05


@pytest.mark.parametrize(("scale", "key", "side"), [(0.5, "half_size_share", 32), (0.75, "reduced_size_share", 48)])
def test_a_reduced_share_trains_the_first_part_of_the_run_on_reduced_batches(synth_data, tmp_path, monkeypatch,
                                                                              scale, key, side):
    seen = []

    step = trainer.optimizer_step

    def recording_step(model, criterion, optimizer, x, y, *args):
        seen.append((tuple(x.shape[-2:]), tuple(y.shape[-2:])))
        return step(model, criterion, optimizer, x, y, *args)

    monkeypatch.setattr(trainer, "optimizer_step", recording_step)
    result = train(TrainConfig(data=str(synth_data), out=str(tmp_path), input_size=64, epochs=4, batch_size=8,
                               arch_kwargs={"base": 8}, seed=4, reduced_size_scale=scale, **{key: 0.5}),
                   show_progress=False)
    assert [h.get("reduced_size", 1.0) for h in result.history] == [scale, scale, 1.0, 1.0]
    assert set(seen) == {((side, side), (side, side)), ((64, 64), (64, 64))}
    assert seen[0] == ((side, side), (side, side)) and seen[-1] == ((64, 64), (64, 64))


def test_reduced_sides_round_to_the_stride_so_any_input_size_takes_any_scale():
    assert reduced_shape(256, 256, 0.75, 16) == (192, 192)
    assert reduced_shape(224, 384, 0.75, 16) == (160, 288)  # 168 is no multiple of 16: the nearest that is
    assert reduced_shape(64, 64, 0.1, 32) == (32, 32)  # never below one stride


def test_training_with_the_loss_at_a_quarter_of_the_side_learns_and_keeps_full_size_masks(
        synth_data, tmp_path, monkeypatch):
    seen = []
    original = trainer.optimizer_step

    def recording_step(model, criterion, optimizer, x, y, bf16, loss_downscale=1):
        seen.append(loss_downscale)
        return original(model, criterion, optimizer, x, y, bf16, loss_downscale)

    monkeypatch.setattr(trainer, "optimizer_step", recording_step)
    result = train(TrainConfig(data=str(synth_data), out=str(tmp_path), arch="mobile-lraspp", input_size=64, epochs=4,
                               batch_size=8, seed=5, lr=5e-3, loss_downscale=4, calibrate=False), show_progress=False)
    assert seen and set(seen) == {4}
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    model = model_from_checkpoint(load_checkpoint(result.best_checkpoint))
    assert model(torch.zeros(1, 1, 64, 64)).shape == (1, 5, 64, 64)


@pytest.mark.parametrize("change, message", [
    ({"input_size": 100}, "multiple of 32"), ({"loss": "focal"}, "unknown loss"),
    ({"dropout": 1.5}, "dropout"), ({"channels": 2}, "channels"), ({"half_size_share": 1.0}, "reduced_size_share"),
    ({"reduced_size_scale": 1.0}, "reduced_size_scale"),
    ({"compile_loss": "no"}, "compile_loss must be true or false"), ({"calibrate": 1}, "calibrate must be"),
    ({"input_width": 96}, "input_width and input_height go together"), ({"input_height": 90}, "multiple of 32"),
    ({"input_width": 64, "input_height": 96, "crop_size": 96}, "crop size 96 must be"),
    ({"loss_downscale": 3}, "loss_downscale must be 1, 2 or 4"),
])
def test_bad_settings_are_refused(change, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(data="x", **change).validate()


CONFIGS = Path(__file__).resolve().parents[2] / "benchmarks" / "configs"


@pytest.mark.parametrize("config", sorted(CONFIGS.glob("*.yaml")), ids=lambda path: path.stem)
def test_benchmark_configs_are_valid(config):
    """A typo in a benchmark config is found here, not 30 minutes into its run."""
    cfg = TrainConfig.from_yaml(config)
    cfg.data = "x"
    cfg.validate()
    get_architecture(cfg.arch).check_options(cfg.arch_kwargs)
    build_model(cfg.arch, 1, 2, **cfg.arch_kwargs)  # and the values it gives them
    assert cfg.max_minutes is not None and cfg.max_minutes < 30  # the benchmark's target is 30 minutes


def test_unknown_yaml_setting_is_refused(tmp_path):
    (tmp_path / "c.yaml").write_text("epochs: 3\nlearning_rate: 0.1\n")
    with pytest.raises(ConfigError, match="learning_rate"):
        TrainConfig.from_yaml(tmp_path / "c.yaml")


def test_truncated_checkpoint_is_refused(trained_run, tmp_path):
    data = trained_run.best_checkpoint.read_bytes()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(bad)


@pytest.mark.parametrize("content", [bytes(range(256)) * 16, b"\x80\x02" + bytes(range(255, 0, -1))])
def test_random_bytes_are_called_unreadable_not_dangerous(tmp_path, content):
    path = tmp_path / "noise.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not a readable checkpoint") as refused:
        load_checkpoint(path)
    assert "run code" not in str(refused.value)


def test_foreign_checkpoint_is_refused(tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not an edgeseg checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


class _Payload:
    def __reduce__(self):
        return (print, ("code ran while loading",))


def test_checkpoint_that_would_run_code_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"format": "edgeseg-checkpoint", "meta": _Payload(), "model": {}}, path, pickle_module=pickle)
    with pytest.raises(CheckpointError) as refused:
        load_checkpoint(path)
    assert "code ran" not in capsys.readouterr().out
    assert "would run code" in str(refused.value) and "\x1b" not in str(refused.value)


def test_a_checkpoint_without_input_metadata_is_refused_before_export(trained_run, tmp_path):
    state = load_checkpoint(trained_run.best_checkpoint)
    del state["meta"]["input"]
    path = tmp_path / "no-input.pt"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"metadata is incomplete: meta\.input: missing"):
        load_checkpoint(path)


def test_colour_masks_load_like_id_masks(synth_data, tmp_path):
    import shutil

    import cv2

    from edgeseg.data import DatasetLayout
    from edgeseg.training.dataset import load_split

    colour = shutil.copytree(synth_data, tmp_path / "colour")
    palette = DatasetLayout.open(colour).classes.palette_bgr()
    for path in (colour / "masks").iterdir():
        cv2.imwrite(str(path), palette[cv2.imread(str(path), cv2.IMREAD_UNCHANGED)])
    _, id_masks, _ = load_split(DatasetLayout.open(synth_data), "val", 1, 64, train=False)
    _, colour_masks, _ = load_split(DatasetLayout.open(colour), "val", 1, 64, train=False)
    assert all(np.array_equal(a, b) for a, b in zip(id_masks, colour_masks, strict=True))
    assert any((m > 0).any() for m in colour_masks)
