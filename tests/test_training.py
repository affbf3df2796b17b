"""Every preset trains on CPU; the toy presets visibly learn; the trainer obeys its commands."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from engine import commands as cmd
from engine import events as ev
from engine.config import ConfigError
from engine.presets import preset_paths
from engine.data.synthetic import RING_STD, ring_centres
from engine.metrics import mixture_quality, painter_quality
from helpers import Recorder, generated, quick, trained_parameters, unmoved_networks


@pytest.mark.parametrize("name", sorted(p.stem for p in preset_paths()))
def test_every_preset_trains_a_few_steps(name, fake_fashion, tmp_path):
    trainer, events = quick(name, "report_every=2", "sample_every=3", "batch_size=16",
                            fake_dir=fake_fashion, run_dir=tmp_path / "run")
    before = trained_parameters(trainer)
    assert before and trainer.run(6) == "done"
    waiting = set()
    if trainer.config.algorithm == "seqgan":  # 6 steps are all MLE pre-training: D and the MLE-only twin wait
        assert trainer.algorithm.phase(6) == "MLE pre-training"
        waiting = set(before) - {"generator"}
    if trainer.config.algorithm == "srgan":  # 6 steps are all pixel-MSE pre-training: D waits
        assert trainer.algorithm.phase(6).startswith("pixel-MSE")
        waiting = {"discriminator"}
    if trainer.config.algorithm == "stackgan":  # 6 steps are all stage I: G₂ and D₂ wait for stackgan.stage1_steps
        assert trainer.algorithm.phase(6).startswith("stage I:")
        waiting = {"generator2", "discriminator2"}
    assert set(unmoved_networks(trainer, before)) == waiting  # every network its phase trains took steps
    metrics = events.of(ev.Metrics)
    assert [m.step for m in metrics] == [2, 4, 6]
    losses = trainer.declaration.losses  # what the family says it checks for NaN, e.g. g_loss and d_loss
    for m in metrics:
        reported = [name for name in losses if name in m.values]
        assert reported and all(np.isfinite(m.values[name]) for name in reported)
        if trainer.config.algorithm == "gan":
            assert {"g_loss", "d_loss"} <= set(reported)
    if trainer.config.loss.name in ("wgan", "wgan_gp"):
        assert "wasserstein" in metrics[-1].values
    assert (tmp_path / "run" / "checkpoints" / "step_0000006.pt").is_file()
    pngs = sorted((tmp_path / "run" / "samples").glob("*.png"))
    assert [p.name for p in pngs] == ["step_0000000.png", "step_0000003.png", "step_0000006.png"]
    with Image.open(pngs[-1]) as img:
        assert img.size[0] > 28
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["step"] == 6


def test_painter_learns_the_band():
    trainer, _ = quick("painter")
    before = painter_quality(generated(trainer))
    trainer.run(1500)
    after = painter_quality(generated(trainer))
    assert before["valid_share"] < 0.2
    assert after["valid_share"] > 0.7
    assert after["a_distance"] < before["a_distance"] / 3


def test_ring_generator_finds_several_modes():
    trainer, _ = quick("ring8")
    centres = ring_centres().numpy()
    before = mixture_quality(generated(trainer), centres, RING_STD)
    trainer.run(2000)
    points = generated(trainer)
    after = mixture_quality(points, centres, RING_STD)
    assert before["modes_captured"] <= 1
    assert after["modes_captured"] >= 4
    mean_dist = lambda p: np.linalg.norm(p[:, None] - centres[None], axis=2).min(1).mean()
    assert mean_dist(points) < 0.5 * mean_dist(generated(quick("ring8")[0]))


def weights(trainer):
    """Every parameter and buffer of every network the family declares, and of the EMA copies."""
    modules = list(trainer.nets.values()) + list(trainer.ema.values())
    return torch.cat([t.detach().float().flatten() for m in modules for t in list(m.parameters()) + list(m.buffers())])


@pytest.mark.parametrize("name", sorted(p.stem for p in preset_paths()))
def test_resume_is_bit_identical(name, fake_fashion, tmp_path):
    straight, _ = quick(name, "batch_size=16", "checkpoint_every=10", fake_dir=fake_fashion, run_dir=tmp_path / "a")
    straight.run(20)
    first, _ = quick(name, "batch_size=16", "checkpoint_every=10", fake_dir=fake_fashion, run_dir=tmp_path / "b")
    first.run(10)
    checkpoint = tmp_path / "b" / "checkpoints" / "step_0000010.pt"
    resumed, _ = quick(name, "batch_size=16", "checkpoint_every=10", fake_dir=fake_fashion,
                       run_dir=tmp_path / "b", resume=checkpoint)
    assert resumed.step == 10
    resumed.run(20)
    assert torch.equal(weights(straight), weights(resumed))


def run_in_thread(trainer, steps):
    import threading
    thread = threading.Thread(target=trainer.run, args=(steps,), daemon=True)
    thread.start()
    return thread


def test_pause_set_step_resume_stop(tmp_path):
    trainer, events = quick("ring8", "report_every=5", run_dir=tmp_path / "run")
    trainer.commands.put(cmd.Pause())
    thread = run_in_thread(trainer, 100000)
    events.wait_for(lambda e: isinstance(e, ev.Paused))
    trainer.commands.put(cmd.Set("k", 3))
    trainer.commands.put(cmd.Set("lr_d", 5e-4))
    trainer.commands.put(cmd.Set("k", 0))
    trainer.commands.put(cmd.Set("batch_size", 8))
    trainer.commands.put(cmd.Step(1))
    metric = events.wait_for(lambda e: isinstance(e, ev.Metrics))
    assert metric.step == 1 and metric.values["k"] == 3 and metric.values["lr_d"] == 5e-4
    assert trainer.opts["discriminator"].param_groups[0]["lr"] == 5e-4
    changes = [(e.name, e.old, e.new, e.step) for e in events.of(ev.ParamChanged)]
    assert changes == [("k", 1, 3, 0), ("lr_d", 1e-3, 5e-4, 0)]
    rejected = [e.why for e in events.of(ev.CommandRejected)]
    assert "train.discriminator_steps = 0" in rejected[0]
    assert "data.batch_size cannot change while training" in rejected[1]
    log = [json.loads(line) for line in (tmp_path / "run" / "changes.jsonl").read_text().splitlines()]
    assert [entry["name"] for entry in log] == ["k", "lr_d"]
    trainer.commands.put(cmd.Resume())
    events.wait_for(lambda e: isinstance(e, ev.Metrics) and e.step >= 20)
    trainer.commands.put(cmd.Stop())
    thread.join(30)
    assert not thread.is_alive()
    finished = events.of(ev.Finished)[0]
    assert finished.reason == "stopped"
    assert (tmp_path / "run" / "checkpoints" / f"step_{finished.step:07d}.pt").is_file()


def test_nan_pauses_and_rollback_restores(tmp_path):
    trainer, events = quick("ring8", "checkpoint_every=5", run_dir=tmp_path / "run", interactive=True)
    trainer.run(10)
    good = weights(trainer).clone()
    with torch.no_grad():
        next(trainer.nets["generator"].parameters()).fill_(float("nan"))
    thread = run_in_thread(trainer, 20)
    paused = events.wait_for(lambda e: isinstance(e, ev.Paused) and e.reason)
    assert "NaN or Inf" in paused.reason and "step 11" in paused.reason
    trainer.commands.put(cmd.Rollback())
    rolled = events.wait_for(lambda e: isinstance(e, ev.RolledBack))
    assert rolled.step == 10
    assert torch.equal(weights(trainer), good)
    trainer.commands.put(cmd.Resume())
    thread.join(60)
    assert events.of(ev.Finished)[-1].step == 20


def test_tricks_compose_and_instance_noise_anneals():
    trainer, events = quick("ring8", "label_smoothing=0.1", "instance_noise=0.5", "instance_noise_anneal_steps=20",
                            "ema_decay=0.9", "mixed_precision=true", "report_every=5")
    assert trainer.run(25) == "done"
    noise = [m.values["instance_noise"] for m in events.of(ev.Metrics) if m.group == "train"]
    assert noise == sorted(noise, reverse=True) and noise[0] > 0.3 and noise[-1] == 0.0
    assert any("Mixed precision needs CUDA" in w.text for w in events.of(ev.Warning))
    # one more step from a known EMA state: ema_new = ema_old + (1 − decay)(g_new − ema_old), parameter by parameter
    # (at step 100, past any warm-up of the decay: the configured 0.9 applies)
    assert trainer.run(100) == "done"
    ema_net, g_net = trainer.ema["generator"], trainer.nets["generator"]
    ema_old = [p.detach().clone() for p in ema_net.parameters()]
    g_old = [p.detach().clone() for p in g_net.parameters()]
    assert trainer.run(101) == "done"
    g_new = [p.detach() for p in g_net.parameters()]
    assert not all(torch.equal(a, b) for a, b in zip(g_old, g_new))  # G took a step
    for old, g, new in zip(ema_old, g_new, ema_net.parameters()):
        torch.testing.assert_close(new, old + 0.1 * (g - old), rtol=1e-5, atol=1e-6)
    assert not all(torch.equal(a, b) for a, b in zip(ema_old, ema_net.parameters()))
    # samples come from the smoothed copy, not from G
    inputs = trainer.algorithm.random_inputs(64, torch.Generator().manual_seed(5))
    samples = trainer.generate(inputs)
    with torch.no_grad():
        from_ema = ema_net.eval()(inputs["z"], inputs.get("codes"), inputs.get("labels"))
        from_g = g_net.eval()(inputs["z"], inputs.get("codes"), inputs.get("labels"))
    g_net.train()
    assert torch.equal(samples, from_ema)
    assert (samples - from_g).abs().max() > 1e-4


def test_r1_is_the_squared_gradient_on_real_data_taken_every_rth_discriminator_step():
    from types import SimpleNamespace
    from engine.tricks import r1_penalty
    w = torch.tensor([3.0, -4.0])
    linear = lambda x, labels: SimpleNamespace(logit=x @ w + 1.0)  # ∇D = w everywhere: R1 = ‖w‖² = 25
    assert r1_penalty(linear, torch.randn(16, 2), None).item() == pytest.approx(25.0)
    trainer, events = quick("ring8", "r1_weight=0.1", "tricks.r1_every=4", "report_every=1")
    assert trainer.run(9) == "done"
    rows = [m for m in events.of(ev.Metrics) if m.group == "train"]
    assert [m.step for m in rows if "r1_penalty" in m.values] == [1, 5, 9]  # D steps 0, 4 and 8
    trainer, events = quick("ring8", "r1_weight=0", "report_every=1")
    assert trainer.run(3) == "done"
    assert not [m for m in events.of(ev.Metrics) if "r1_penalty" in m.values]


@pytest.mark.slow
def test_ring8_as_shipped_covers_every_mode_with_samples_near_them():
    """Issue 18's goal for the preset (its own 8,000 steps): 8 of 8 modes, ≥ 95 % high quality over 3 seeds
    (measured 94.6, 95.1, 95.8 %); R1 and the EMA preview are what get it there (without: 8, 7, 8 and 68 %)."""
    trainer, _ = quick("ring8", "metrics_every=0")
    assert trainer.run() == "done"
    quality = mixture_quality(generated(trainer, n=2500), ring_centres().numpy(), RING_STD)
    assert quality["modes_captured"] == 8 and quality["high_quality"] > 0.9, quality


def test_a_fully_connected_layer_after_the_convolutions_feeds_every_head(fake_fashion):
    trainer, _ = quick("infogan_fashion", "model.d_fc=96", "batch_size=8", "metrics_every=0", fake_dir=fake_fashion)
    D = trainer.nets["discriminator"]
    assert D.trunk(torch.zeros(2, 1, 28, 28)).shape == (2, 96)
    assert D.head.in_features == 96 and D.q_head[0].in_features == 96
    assert trainer.run(3) == "done"


def test_a_fully_connected_layer_before_the_feature_maps_feeds_g(fake_fashion):
    """InfoGAN's G as in the paper: FC 1024, FC 7·7·128, two transposed convolutions (here narrower)."""
    trainer, _ = quick("infogan_fashion", "model.g_fc=48", "model.d_fc=32", "base_channels=8", "batch_size=8",
                       "metrics_every=0", fake_dir=fake_fashion)
    linear = [module for module in trainer.nets["generator"].body if isinstance(module, torch.nn.Linear)]
    assert [(layer.in_features, layer.out_features) for layer in linear] == [(62 + 12, 48), (48, 16 * 7 * 7)]
    assert trainer.run(3) == "done"
    with pytest.raises(ConfigError, match=r"model\.g_fc"):
        quick("improved_fashion", "model.g_fc=64", fake_dir=fake_fashion)


def test_acgan_learns_classes_from_real_images_unless_told_to_use_fakes_too(fake_fashion):
    losses = {}
    for fakes in (False, True):
        trainer, events = quick("acgan_fashion", f"model.ac_fake_class_loss={str(fakes).lower()}", "batch_size=8",
                                "report_every=1", "metrics_every=0", "seed=0", fake_dir=fake_fashion)
        assert trainer.run(2) == "done"
        losses[fakes] = [m.values["class_loss_d"] for m in events.of(ev.Metrics) if "class_loss_d" in m.values]
    assert losses[True][0] > losses[False][0] + 1.0  # a second cross-entropy of about log 10 at the start
    with pytest.raises(ConfigError, match=r"model\.ac_fake_class_loss"):
        quick("dcgan_fashion", "model.ac_fake_class_loss=true", fake_dir=fake_fashion)


def test_a_2d_preview_puts_each_point_where_it_lies():
    from engine.images import FAKE_COLOUR, REAL_COLOUR, render_points
    picture = render_points(np.array([[0.0, 0.0], [np.nan, 1.0], [50.0, 0.0]]), np.array([[-2.0, 2.0]]),
                            (-2.0, 2.0, -2.0, 2.0), size=101)
    assert tuple(picture[50, 50]) == FAKE_COLOUR  # the centre of the extent is the centre of the picture
    assert tuple(picture[0, 0]) == REAL_COLOUR  # (−2, 2): top left
    assert tuple(picture[50, 100]) == (255, 255, 255)  # a point far outside the extent is not drawn at its edge
    assert (picture != 255).any(2).sum() < 2 * 21  # two dots of 21 pixels or fewer; the NaN point drew nothing

