import pytest
import torch

from edgeseg.cli import main
from edgeseg.cli.train_cmd import RECIPE
from edgeseg.errors import ConfigError
from edgeseg.models import ARCHITECTURES, build_model
from edgeseg.models.complexity import count_gflops, count_parameters
from edgeseg.training.config import TrainConfig

LEAN = TrainConfig.from_yaml(RECIPE).arch_kwargs  # the recipe's lean mobile-lraspp
# every architecture, plus the options that change its graph
VARIANTS = [(name, {}) for name in ARCHITECTURES] + [
    ("mobile-lraspp", {"fine_detail": True}), ("mobile-lraspp", LEAN), ("mobile-lraspp", {**LEAN, "stem_detail": True}),
    ("unet", {"residual": True}),
    ("unet-lite", {"residual": True, "coarse_classifier": True})]
VARIANT_IDS = [name + "".join(f"-{k}" for k in kwargs) for name, kwargs in VARIANTS]


@pytest.mark.parametrize("name, kwargs", VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize("channels", [1, 3])
def test_output_is_per_pixel_logits_at_input_size(name, kwargs, channels):
    model = build_model(name, channels, 5, **kwargs).eval()
    for h, w in [(64, 64), (96, 128)]:
        with torch.no_grad():
            out = model(torch.zeros(2, channels, h, w))
            smaller = model(torch.zeros(2, channels, h, w), output_size=(h // 4, w // 4))  # training's loss
        assert out.shape == (2, 5, h, w) and smaller.shape == (2, 5, h // 4, w // 4)


def test_lraspp_is_lighter_than_unet():
    unet, mobile = build_model("unet", 1, 6), build_model("mobile-lraspp", 1, 6)
    assert count_gflops(mobile, 1, 512) < count_gflops(unet, 1, 512) / 5
    assert 0.1e6 < count_parameters(mobile) < 5e6 and 0.1e6 < count_parameters(unet) < 5e6


def test_unet_lite_is_the_unet_without_its_full_resolution_level():
    """Same weights and levels, each level at half the side: a quarter of the arithmetic."""
    unet, lite = build_model("unet", 1, 6), build_model("unet-lite", 1, 6)
    assert count_parameters(lite) == count_parameters(unet)
    assert count_gflops(lite, 1, 512) == pytest.approx(count_gflops(unet, 1, 512) / 4, rel=0.01)
    assert ARCHITECTURES["unet-lite"].stride == 2 * ARCHITECTURES["unet"].stride


def test_lean_options_change_only_the_one_sixteenth_stage():
    """3x3 depthwise kernels after the 1/8 blocks, two thirds of the last three expansions, no
    squeeze-excite anywhere; the blocks before the 1/16 stage stay MobileNetV3-Small's."""
    from edgeseg.models.mobile_lraspp import SqueezeExcite

    small, lean = build_model("mobile-lraspp", 1, 6, fine_detail=True), build_model("mobile-lraspp", 1, 6, **LEAN)

    def depthwise(model):
        return [next(c for c in b.modules() if isinstance(c, torch.nn.Conv2d) and c.groups > 1) for b in model.blocks]

    assert [c.kernel_size[0] for c in depthwise(small)] == [3] * 3 + [5] * 8
    assert [c.kernel_size[0] for c in depthwise(lean)] == [3] * 11
    assert [c.out_channels for c in depthwise(lean)][8:] == [192, 384, 384]
    assert [c.out_channels for c in depthwise(lean)][:8] == [c.out_channels for c in depthwise(small)][:8]
    assert not any(isinstance(m, SqueezeExcite) for m in lean.modules())
    assert any(isinstance(m, SqueezeExcite) for m in small.modules())
    assert count_gflops(lean, 1, 256) < 0.8 * count_gflops(small, 1, 256)


def test_stem_detail_adds_a_classifier_that_refines_the_output_at_half_resolution():
    """Without it the half-size output is the 1/4 one upsampled; with it, 17 parameters per class
    more, the stem's features change it pixel by pixel."""
    torch.manual_seed(0)
    lean, stem = (build_model("mobile-lraspp", 1, 6, **LEAN, stem_detail=on).eval() for on in (False, True))
    assert count_parameters(stem) - count_parameters(lean) == 17 * 6
    x = torch.randn(1, 1, 64, 64)

    def upsampled_quarter(model):
        with torch.no_grad():
            half, quarter = model(x, output_size=(32, 32)), model(x, output_size=(16, 16))
        return half, torch.nn.functional.interpolate(quarter, size=(32, 32), mode="bilinear", align_corners=False)

    half, smooth = upsampled_quarter(lean)
    torch.testing.assert_close(half, smooth)
    half, smooth = upsampled_quarter(stem)
    assert (half - smooth).abs().mean() > 1e-3


@pytest.mark.parametrize("option, value", [("kernel", 7), ("last_stage_width", 0.0), ("last_stage_width", 1.5)])
def test_lean_option_values_out_of_range_are_a_clear_error(option, value):
    with pytest.raises(ConfigError, match=option):
        build_model("mobile-lraspp", 1, 2, **{option: value})


def test_gflops_counts_a_known_convolution():
    conv = torch.nn.Conv2d(1, 4, 3, padding=1)
    assert count_gflops(conv, 1, 10) == pytest.approx(2 * 4 * 9 * 100 / 1e9)


def test_unknown_architecture_is_a_clear_error():
    with pytest.raises(ConfigError, match="choose one of"):
        build_model("resnet", 1, 2)


def test_options_an_architecture_does_not_take_are_a_clear_error():
    with pytest.raises(ConfigError, match="no option fine_detail") as error:
        build_model("unet", 1, 2, fine_detail=True)
    assert "residual" in error.value.fix


def test_residual_unet_blocks_pass_their_input_through_a_shortcut():
    """With the convolutions' output zeroed (last BatchNorm scaled to 0), a residual block is
    its shortcut: ReLU of the input where the channel counts match."""
    from edgeseg.models.unet import ResidualDoubleConv

    block = ResidualDoubleConv(8, 8).eval()
    torch.nn.init.zeros_(block.body[1][1].weight)
    torch.nn.init.zeros_(block.body[1][1].bias)
    x = torch.randn(2, 8, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(block(x), torch.relu(x))


def test_models_command_lists_params_and_gflops(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ARCHITECTURES) and "GFLOPs@512" in out
    assert "unet-lite       base, residual, coarse_classifier" in out


@pytest.mark.parametrize("name, kwargs", VARIANTS, ids=VARIANT_IDS)
def test_class_prior_makes_an_untrained_model_predict_the_majority_class(name, kwargs):
    import numpy as np

    from edgeseg.training.dataset import log_class_prior

    torch.manual_seed(0)
    model = build_model(name, 1, 4, **kwargs).eval()
    model.set_class_prior(torch.from_numpy(log_class_prior(np.array([970_000, 10_000, 10_000, 10_000]))))
    with torch.no_grad():
        pred = model(torch.randn(1, 1, 64, 64)).argmax(1)
    assert (pred == 0).float().mean() > 0.95


@pytest.mark.parametrize("name, kwargs", VARIANTS, ids=VARIANT_IDS)
def test_shifted_class_scores_move_every_pixels_logits_by_the_offsets(name, kwargs):
    """Calibration folds its offsets into a bias: every pixel's score must move by exactly them."""
    torch.manual_seed(0)
    model = build_model(name, 1, 4, **kwargs).eval()
    x = torch.randn(1, 1, 64, 96)
    offsets = torch.tensor([0.0, -1.5, 0.75, 2.0])
    with torch.no_grad():
        before = model(x)
        model.shift_class_scores(offsets)
        after = model(x)
    torch.testing.assert_close(after - before, offsets.view(1, 4, 1, 1).expand_as(before), atol=1e-4, rtol=0)


def test_models_command_marks_a_size_a_model_does_not_take(capsys):
    assert main(["models", "--size", "48"]) == 0  # a multiple of 16, not of 32
    # table rows start at the margin; the options listed below them are indented
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line[:1].strip()}
    assert "(stride 32)" in rows["unet-lite"] and "(stride" not in rows["unet"]
    assert main(["models", "--size", "40"]) != 0
    assert "fits no architecture" in capsys.readouterr().err
