"""LAPGAN and GRAN, the staged generators: each trains every network, checkpoints and resumes bit for bit, its sample
picture has the stage rows under the grid, its stages have the documented sizes and end in the image (LAPGAN's is the
enlarged level below plus the residual), `generate` uses the networks it is given, bad settings are refused in one
sentence naming the key, a folder of colour images trains, and LAPGAN's per-level learning rates are live."""
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from engine import events as ev
from engine.algorithms.lapgan import down, pyramid, up
from engine.config import ConfigError
from engine.presets import load_preset
from engine.sampler import load_sampler
from helpers import quick

SMALL = {"lapgan": ("lapgan.coarse_width=32", "lapgan.g_channels=8", "lapgan.d_channels=8", "lapgan.noise_dim=16"),
         "gran": ("gran.g_channels=8", "gran.d_channels=8", "gran.noise_dim=16")}
PRESETS = {"lapgan": "lapgan_fashion", "gran": "gran_fashion"}
COMMON = ("batch_size=8", "sample_count=4", "metrics_every=0", "report_every=1", "train.tensorboard=false")


def small(family, fake_dir, *overrides, **kwargs):
    return quick(PRESETS[family], *COMMON, *SMALL[family], *overrides, fake_dir=fake_dir, **kwargs)


def state_of(trainer) -> dict:
    """Every tensor of every network and EMA copy, by name."""
    modules = {**trainer.nets, **{f"ema.{name}": net for name, net in trainer.ema.items()}}
    return {name: {k: v.detach().clone() for k, v in net.state_dict().items()} for name, net in modules.items()}


def same_state(one: dict, other: dict) -> bool:
    return one.keys() == other.keys() and all(torch.equal(one[n][k], other[n][k]) for n in one for k in one[n])


def drawn(trainer, n=3, seed=5):
    """(inputs, images, stages) from the trainer's sampling networks, as the loop samples (eval, no grad)."""
    inputs = trainer.algorithm.random_inputs(n, torch.Generator().manual_seed(seed))
    images = trainer.generate(inputs)
    return inputs, images, trainer.algorithm.last_stages


# -- training, checkpoints, the picture ---------------------------------------------------------------------------
@pytest.mark.parametrize("family", ["lapgan", "gran"])
def test_it_trains_every_network_checkpoints_and_draws_the_stage_rows(family, fake_fashion, tmp_path):
    trainer, events = small(family, fake_fashion, "checkpoint_every=2", "sample_every=2", run_dir=tmp_path)
    parts = {f"{name}.{i}": part for name, net in trainer.nets.items()  # LAPGAN: each level's G and D
             for i, part in enumerate(net if isinstance(net, torch.nn.ModuleList) else [net])}
    moved = {name: [p.detach().clone() for p in part.parameters()] for name, part in parts.items()}
    assert trainer.run(3) == "done", events.of(ev.Failed)
    assert len(parts) == (6 if family == "lapgan" else 2)
    assert not [name for name, params in moved.items()
                if all(torch.equal(a, b.detach()) for a, b in zip(params, parts[name].parameters()))]
    assert (tmp_path / "checkpoints" / "step_0000003.pt").is_file()
    values = [m.values for m in events.of(ev.Metrics) if m.group == "train"][-1]
    assert all(np.isfinite(v) for v in values.values())
    plotted = {series[0] for _, lines in trainer.declaration.plots for series in lines}
    assert plotted <= set(values) and set(trainer.declaration.losses) <= set(values), values  # every curve is fed
    assert {"d_loss_0", "g_loss_2", "grad_norm_d2"} <= plotted if family == "lapgan" else {"update_4"} <= plotted
    with Image.open(tmp_path / "samples" / "step_0000003.png") as img:
        width, height = img.size
    _, images, stages = drawn(trainer, 4)
    grid = trainer.preview.samples_event_fields(images)["picture"]
    rows = 4  # sample_count = 4 samples, each a row of its stages under a label strip
    assert height >= grid.shape[0] + rows * 28 + 14 and width >= len(stages) * 28, (width, height, grid.shape)
    sampler = load_sampler(tmp_path / "checkpoints" / "step_0000003.pt")  # the generator alone, from the checkpoint
    assert set(sampler.algorithm.nets) == {"generator"}
    out = sampler.generate(sampler.algorithm.random_inputs(2, torch.Generator().manual_seed(0)))
    assert out.shape == (2, 1, 28, 28) and out.abs().max() <= 1


@pytest.mark.parametrize("family", ["lapgan", "gran"])
def test_resume_is_bit_for_bit(family, fake_fashion, tmp_path):
    sets = ("checkpoint_every=2", "sample_every=2")
    straight, _ = small(family, fake_fashion, *sets, run_dir=tmp_path / "a")
    straight.run(4)
    first, _ = small(family, fake_fashion, *sets, run_dir=tmp_path / "b")
    first.run(2)
    resumed, _ = small(family, fake_fashion, *sets, run_dir=tmp_path / "b",
                       resume=tmp_path / "b" / "checkpoints" / "step_0000002.pt")
    resumed.run(4)
    assert same_state(state_of(straight), state_of(resumed))


# -- the stages -------------------------------------------------------------------------------------------------------
def test_lapgan_stages_are_the_pyramid_and_the_image_is_the_enlarged_level_plus_the_residual(fake_fashion):
    trainer, _ = small("lapgan", fake_fashion)
    trainer.run(2)
    inputs, image, stages = drawn(trainer)
    assert [(label, tuple(s.shape[-2:])) for label, s in stages] == [
        ("I0", (7, 7)), ("h1", (14, 14)), ("I1", (14, 14)), ("h2", (28, 28)), ("I2", (28, 28))]
    assert torch.equal(image, stages[-1][1]) and image.shape == (3, 1, 28, 28)
    nets = trainer.sampling_nets()
    with torch.no_grad():
        G = copy.deepcopy(nets["generator"]).eval()
        one = dict(stages)["I1"]
        residual = G[2](up(one), inputs["z2"])
        assert torch.equal(image, (up(one) + residual).clamp(-1, 1))
        assert torch.equal(dict(stages)["h2"], residual.clamp(-1, 1))
        assert torch.equal(dict(stages)["I0"], G[0](inputs["z0"]))
    trainer.config.set("lapgan.show_residuals", False)
    _, again, stages = drawn(trainer)
    assert [label for label, _ in stages] == ["I0", "I1", "I2"] and torch.equal(again, image)


def test_the_real_pyramid_is_box_means_and_bilinear_enlargements():
    x = torch.rand(2, 1, 28, 28) * 2 - 1
    levels = pyramid(x, 3)
    assert [tuple(level.shape[-2:]) for level in levels] == [(7, 7), (14, 14), (28, 28)]
    assert torch.allclose(levels[1][0, 0, 3, 5], x[0, 0, 6:8, 10:12].mean())
    assert torch.equal(levels[0], down(levels[1])) and levels[2] is x
    assert torch.allclose(up(levels[1]), F.interpolate(levels[1], size=(28, 28), mode="bilinear", align_corners=False))


@pytest.mark.parametrize("reads", ["update", "canvas"])
def test_gran_stages_are_the_canvas_after_each_step_and_end_in_the_image(fake_fashion, reads):
    trainer, _ = small("gran", fake_fashion, "gran.steps=3", f"gran.encoder_reads={reads!r}")
    trainer.run(2)
    inputs, image, stages = drawn(trainer)
    assert [(label, tuple(s.shape)) for label, s in stages] == [(f"t{t}", (3, 1, 28, 28)) for t in (1, 2, 3)]
    assert torch.equal(image, stages[-1][1])
    with torch.no_grad():
        G = copy.deepcopy(trainer.sampling_nets()["generator"]).eval()
        _, canvases, updates = G(inputs["z"])
    assert torch.equal(torch.tanh(canvases[0]), stages[0][1]) and torch.equal(canvases[0], updates[0])
    assert torch.allclose(canvases[2], updates[0] + updates[1] + updates[2], atol=1e-6)


@pytest.mark.parametrize("family", ["lapgan", "gran"])
def test_generate_uses_the_networks_it_is_given(family, fake_fashion):
    trainer, _ = small(family, fake_fashion)
    inputs = trainer.algorithm.random_inputs(3, torch.Generator().manual_seed(1))
    other = {"generator": copy.deepcopy(trainer.nets["generator"]).eval()}
    with torch.no_grad():
        for p in other["generator"].parameters():
            p.add_(0.5)
        mine = trainer.algorithm.generate(inputs, {"generator": trainer.nets["generator"].eval()})
        theirs = trainer.algorithm.generate(inputs, other)
    assert not torch.equal(mine, theirs)


# -- settings ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("preset, overrides, key", [
    ("lapgan_fashion", ["lapgan.levels=4"], r"lapgan\.levels = 4 .*data\.image_size = 28.* 3\.5 pixels.*1, 2 or 3"),
    ("lapgan_fashion", ["data.image_size=64", "lapgan.levels=6"], r"lapgan\.levels = 6 .* 2 pixels"),
    ("lapgan_fashion", ["lapgan.lr_scale=[1, -1, 1]"], r"lapgan\.lr_scale = \[1, -1, 1\]"),
    ("lapgan_fashion", ["data.dataset='ring8'"], r"data\.dataset = 'ring8'"),
    ("gran_fashion", ["gran.steps=0"], r"gran\.steps = 0"),
    ("gran_fashion", ["data.dataset='spiral'"], r"data\.dataset = 'spiral'"),
])
def test_bad_settings_are_refused_in_one_sentence_naming_the_key(preset, overrides, key):
    with pytest.raises(ConfigError, match=key) as caught:
        load_preset(preset, overrides)
    text = str(caught.value)
    assert text.count(". ") == 0 and text.endswith(".")


def test_a_level_count_that_fits_other_sizes_is_accepted():
    assert load_preset("lapgan_fashion", ["data.image_size=32", "lapgan.levels=4"]).lapgan.levels == 4  # 4, 8, 16, 32
    assert load_preset("lapgan_fashion", ["lapgan.levels=1"]).lapgan.levels == 1  # a plain GAN at 28×28


def test_a_level_learning_rate_changes_that_level_only_while_training(fake_fashion):
    trainer, events = small("lapgan", fake_fashion)
    lrs = lambda: {name: opt.param_groups[0]["lr"] for name, opt in trainer.opts.items()}
    assert lrs() == {"g0": 2e-4, "d0": 2e-4, "g1": 2e-4, "d1": 2e-4, "g2": 2e-4, "d2": 2e-4}
    assert "lapgan.lr_scale" in trainer.declaration.controls
    trainer.apply_set("lapgan.lr_scale", [1.0, 0.25, 1.0])
    assert not events.of(ev.CommandRejected)
    assert lrs() == {"g0": 2e-4, "d0": 2e-4, "g1": 5e-5, "d1": 5e-5, "g2": 2e-4, "d2": 2e-4}
    trainer.apply_set("lr_g", 1e-3)
    assert lrs() == {"g0": 1e-3, "d0": 2e-4, "g1": 2.5e-4, "d1": 5e-5, "g2": 1e-3, "d2": 2e-4}
    trainer.apply_set("lapgan.lr_scale", [0, 1, 1])  # refused: the rates stay
    assert len(events.of(ev.CommandRejected)) == 1 and "lapgan.lr_scale" in events.of(ev.CommandRejected)[0].why
    assert lrs()["g1"] == 2.5e-4
    trainer.apply_set("lapgan.lr_scale", [2])  # the levels without a multiplier take 1
    assert lrs() == {"g0": 2e-3, "d0": 4e-4, "g1": 1e-3, "d1": 2e-4, "g2": 1e-3, "d2": 2e-4}
    assert trainer.run(1) == "done"


# -- a person's own folder --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("family", ["lapgan", "gran"])
def test_a_colour_folder_trains(family, tmp_path):
    rng = np.random.default_rng(0)
    for i in range(12):
        picture = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
        Image.fromarray(picture).save(tmp_path / f"{i:02d}.png")
    trainer, events = quick(PRESETS[family], *COMMON, *SMALL[family], "data.dataset='folder'",
                            f"data.path={str(tmp_path)!r}", "data.image_size=32", "data.channels=3")
    assert trainer.run(2) == "done", events.of(ev.Failed)
    _, images, stages = drawn(trainer)
    assert images.shape == (3, 3, 32, 32) and stages[-1][1].shape == images.shape
    if family == "lapgan":
        assert [tuple(s.shape[-2:]) for label, s in stages if label.startswith("I")] == [(8, 8), (16, 16), (32, 32)]
