"""The Composite GAN family (engine.algorithms.composite): it trains and resumes bit for bit, its image is the
last running composite, one part is the background alone, alpha blending and the alpha regulariser are their
definitions, bad settings are refused, alpha_weight is live, and a colour folder trains."""
import copy

import numpy as np
import pytest
import torch
from PIL import Image

from engine import events as ev
from engine.algorithms.composite import CompositeGenerator, alpha_regulariser, blend, visible_shares
from engine.config import ConfigError
from engine.presets import load_preset
from helpers import quick, trained_parameters, unmoved_networks

SMALL = ("batch_size=8", "sample_count=4", "metrics_every=0", "model.base_channels=8", "composite.rnn_hidden=16")


def small(fake_fashion, *overrides, **kwargs):
    return quick("composite_fashion", *SMALL, *overrides, fake_dir=fake_fashion, **kwargs)


def state_of(trainer) -> dict:
    nets = {**trainer.nets, **{f"ema_{k}": v for k, v in trainer.ema.items()}}
    return {name: {k: v.detach().clone() for k, v in net.state_dict().items()} for name, net in nets.items()}


def same_state(one: dict, other: dict) -> bool:
    return one.keys() == other.keys() and all(
        one[n].keys() == other[n].keys() and all(torch.equal(one[n][k], other[n][k]) for k in one[n]) for n in one)


def drawn(trainer, n=4, seed=5):
    inputs = trainer.algorithm.random_inputs(n, torch.Generator().manual_seed(seed))
    images = trainer.generate(inputs)
    return images, dict(trainer.algorithm.last_stages), [label for label, _ in trainer.algorithm.last_stages]


def test_it_trains_every_network_reports_each_part_and_resumes_bit_for_bit(fake_fashion, tmp_path):
    sets = ("checkpoint_every=2", "sample_every=2", "report_every=2")
    straight, events = small(fake_fashion, *sets, run_dir=tmp_path / "a")
    before = trained_parameters(straight)
    assert straight.run(4) == "done"
    assert unmoved_networks(straight, before) == []
    values = events.of(ev.Metrics)[-1].values
    for name in ("d_loss", "g_loss", "g_gan", "alpha_reg", "d_real", "d_fake", "coverage_2", "coverage_3",
                 "visible_1", "visible_2", "visible_3"):
        assert np.isfinite(values[name]), name
    assert 0 < values["coverage_2"] < 1 and 0 < values["coverage_3"] < 1
    assert values["visible_1"] + values["visible_2"] + values["visible_3"] == pytest.approx(1.0, abs=1e-5)
    first, _ = small(fake_fashion, *sets, run_dir=tmp_path / "b")
    first.run(2)
    resumed, _ = small(fake_fashion, *sets, run_dir=tmp_path / "b",
                       resume=tmp_path / "b" / "checkpoints" / "step_0000002.pt")
    assert resumed.step == 2
    resumed.run(4)
    assert same_state(state_of(straight), state_of(resumed))


def test_the_image_is_the_last_running_composite_and_the_stages_come_in_order(fake_fashion):
    trainer, _ = small(fake_fashion)
    trainer.run(1)
    images, stages, labels = drawn(trainer)
    assert labels == ["part 1", "after 1", "part 2", "after 2", "part 3", "after 3"]
    assert torch.equal(images, stages["after 3"])
    assert all(stages[f"part {t}"].shape == (4, 2, 28, 28) for t in (1, 2, 3))
    assert torch.equal(stages["part 1"][:, 1], torch.ones(4, 28, 28))  # the background is opaque
    assert torch.equal(stages["after 1"], stages["part 1"][:, :1])
    for t in (2, 3):  # O^(t) = α_t colour_t + (1 − α_t) O^(t−1), the stage's alpha kept in [−1, 1]
        part = stages[f"part {t}"]
        alpha = (part[:, 1:] + 1) / 2
        assert stages[f"after {t}"] == pytest.approx(alpha * part[:, :1] + (1 - alpha) * stages[f"after {t - 1}"],
                                                     abs=1e-6)
    sheet = trainer.algorithm.stage_sheet(images)
    assert sheet is not None and sheet.shape[1] >= 6 * 28


def test_one_part_is_the_background_alone(fake_fashion):
    trainer, events = small(fake_fashion, "composite.parts=1", "report_every=1")
    assert trainer.run(2) == "done"
    values = events.of(ev.Metrics)[-1].values
    assert values["alpha_reg"] == 0.0 and values["visible_1"] == 1.0 and "coverage_2" not in values
    images, stages, labels = drawn(trainer)
    assert labels == ["part 1", "after 1"]
    assert torch.equal(images, stages["part 1"][:, :1])


def test_generate_uses_the_networks_it_is_given(fake_fashion):
    trainer, _ = small(fake_fashion)
    inputs = trainer.algorithm.random_inputs(3, torch.Generator().manual_seed(1))
    other = copy.deepcopy(trainer.nets["generator"]).eval()
    with torch.no_grad():
        for p in other.painters[0].parameters():
            p.add_(0.5)
        mine = trainer.algorithm.generate(inputs, {"generator": other})
        live = trainer.algorithm.generate(inputs, {"generator": copy.deepcopy(trainer.nets["generator"]).eval()})
    assert not torch.equal(mine, live)


def test_alpha_blending_hides_with_alpha_one_and_keeps_with_alpha_zero():
    shape = (2, 1, 4, 4)
    background, middle, top = torch.full(shape, -0.5), torch.full(shape, 0.25), torch.full(shape, 0.9)
    ones, zeros = torch.ones(shape), torch.zeros(shape)
    image, running = blend([background, middle], [zeros, ones])  # the background's alpha is never read
    assert torch.equal(running[0], background) and torch.equal(image, middle)
    image, running = blend([background, middle, top], [ones, ones, zeros])
    assert torch.equal(running[1], middle) and torch.equal(image, middle)  # alpha 0: what is under shows
    half = torch.zeros(shape)
    half[..., :2] = 1.0  # the top part covers the left half only
    image, _ = blend([background, top], [ones, half])
    assert torch.equal(image[..., :2], top[..., :2]) and torch.equal(image[..., 2:], background[..., 2:])
    quarter = torch.full(shape, 0.25)
    image, _ = blend([background, top], [ones, quarter])
    assert image == pytest.approx(0.25 * top + 0.75 * background)
    shares = visible_shares([ones, quarter, half])
    assert torch.allclose(sum(shares), torch.ones(shape))
    assert torch.equal(shares[0][..., :2], zeros[..., :2]) and shares[0][..., 2:] == pytest.approx(0.75)


def test_the_alpha_regulariser_is_its_definition_in_pixel_shares():
    alpha = torch.zeros(3, 1, 4, 4)
    alpha[1] = 1.0
    alpha[2, ..., :1] = 1.0  # a quarter of the pixels, each 0 or 1
    got = alpha_regulariser(alpha, 0.25)
    assert got.tolist() == pytest.approx([0.25 - 0.25, 0.75 - 0.25, 0.0 - 0.25])
    assert alpha_regulariser(torch.full((1, 1, 4, 4), 0.5), 0.5).tolist() == pytest.approx([0.0])


def test_pooled_alpha_turns_a_one_pixel_lattice_into_an_even_quarter():
    """Why alpha_pool: one pixel of every 2 x 2 opaque meets u = 0.25 with binary alphas, drawing nothing."""
    config = load_preset("composite_fashion", ["composite.rnn_hidden=4", "model.base_channels=4"])
    lattice = -torch.ones(1, 1, 28, 28)
    lattice[..., ::2, ::2] = 1.0
    g = CompositeGenerator(config, (1, 28, 28))
    alpha = (g.smooth(lattice) + 1) / 2
    assert alpha == pytest.approx(torch.full_like(alpha, 0.25))  # now the binarising term sees 0.25, not 0 or 1
    assert alpha_regulariser(alpha, 0.25).item() > alpha_regulariser((lattice + 1) / 2, 0.25).item() + 0.15
    g.pool = 1
    assert torch.equal(g.smooth(lattice), lattice)


@pytest.mark.parametrize("value", [0, 9])
def test_a_number_of_parts_out_of_range_is_refused_in_one_sentence_naming_the_key(value):
    with pytest.raises(ConfigError, match=r"composite\.parts") as caught:
        load_preset("composite_fashion", [f"composite.parts={value}"])
    text = str(caught.value)
    assert text.count(". ") == 0 and text.endswith(".")


def test_point_data_is_refused_in_one_sentence_naming_the_key():
    with pytest.raises(ConfigError, match=r"data\.dataset = 'ring8'") as caught:
        load_preset("composite_fashion", ["data.dataset='ring8'", "model.architecture='mlp'"])
    assert str(caught.value).count(". ") == 0


def test_alpha_weight_is_live(fake_fashion):
    trainer, events = small(fake_fashion, "report_every=1")
    assert "composite.alpha_weight" in trainer.declaration.controls
    trainer.apply_set("composite.alpha_weight", 0.0)
    assert not events.of(ev.CommandRejected)
    assert trainer.run(1) == "done"
    values = events.of(ev.Metrics)[-1].values
    assert values["g_loss"] == values["g_gan"] and values["alpha_reg"] != 0
    trainer.apply_set("alpha_weight", 3.0)  # the short name works too
    assert not events.of(ev.CommandRejected)
    assert trainer.run(2) == "done"
    values = events.of(ev.Metrics)[-1].values
    assert values["g_loss"] == pytest.approx(values["g_gan"] + 3.0 * values["alpha_reg"], rel=1e-5)


def test_a_colour_folder_trains(tmp_path):
    folder = tmp_path / "pictures"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(16):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i:02d}.png")
    trainer, events = quick("composite_fashion", *SMALL, "data.dataset='folder'", f"data.path={str(folder)!r}",
                            "data.channels=3", "data.image_size=32", "report_every=1")
    assert trainer.run(2) == "done", [e.message for e in events.of(ev.Failed)]
    images, stages, _ = drawn(trainer)
    assert images.shape == (4, 3, 32, 32) and stages["part 2"].shape == (4, 4, 32, 32)
    assert torch.equal(images, stages["after 3"])
