"""Every live setting takes effect in what the engine uses; the run folder keeps the newest checkpoints;
`gan-studio presets` lists every preset."""
import dataclasses

import pytest

from engine import events as ev
from engine.cli import main
from engine.presets import load_preset, preset_paths
from engine.run_folder import KEEP_CHECKPOINTS
from helpers import quick


def test_the_newest_five_checkpoints_are_kept(tmp_path):
    assert KEEP_CHECKPOINTS == 5
    trainer, events = quick("ring8", "checkpoint_every=2", "metrics_every=0", "sample_every=1000",
                            run_dir=tmp_path / "run")
    assert trainer.run(16) == "done"
    written = [e.step for e in events.of(ev.Checkpointed)]
    assert written == list(range(0, 17, 2))
    kept = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert kept == [f"step_{s:07d}.pt" for s in (8, 10, 12, 14, 16)]


def test_presets_lists_every_preset_with_its_description(capsys):
    assert main(["presets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    paths = preset_paths()
    assert len(lines) == len(paths) >= 20
    for line, path in zip(lines, paths):
        name, _, rest = line.partition(" ")
        assert name == path.stem
        description = load_preset(path).description
        assert description and rest.strip() == description


def new_value(config, key):
    """A different value the key accepts."""
    value = config.get(key)
    if isinstance(value, list):
        return [round(v * 0.8, 4) for v in value]
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if key == "tricks.label_smoothing":
        return 0.2
    return value * 0.5 if value else 0.25


def d_loss_spy(trainer):
    calls = []
    original = trainer.algorithm.loss.d_loss

    def d_loss(real, fake, target, ctx):
        calls.append(target)
        return original(real, fake, target, ctx)

    trainer.algorithm.loss = dataclasses.replace(trainer.algorithm.loss, d_loss=d_loss)
    return calls


PRESETS = ["ring8", "wgan_clip_fashion", "wgan_gp_fashion", "ebgan_fashion", "began_fashion",
           "loss_sensitive_fashion", "noise_annealing_fashion", "seqgan_oracle", "vae_fashion"]


@pytest.mark.parametrize("name", PRESETS)
def test_every_live_setting_takes_effect(name, fake_fashion):
    overrides = ["batch_size=8"] if name != "seqgan_oracle" else ["seqgan.batch=4", "seqgan.mle_steps=0"]
    if name == "ring8":
        overrides.append("label_smoothing=0.1")
    trainer, events = quick(name, *overrides, "metrics_every=0", "report_every=1", fake_dir=fake_fashion)
    config = trainer.config
    keys = config.live_keys()
    assert keys
    for key in keys:
        new = new_value(config, key)
        trainer.apply_set(key, new)
        assert not events.of(ev.CommandRejected), (key, new, events.of(ev.CommandRejected))
        assert events.of(ev.ParamChanged)[-1].new == new and config.get(key) == new, key
        section, field = key.split(".")
        if section == "optim":
            role = field[-1]  # lr_g, betas_d, weight_decay_d, ...
            for net, opt in trainer.opts.items():
                if trainer.algorithm.opt_roles.get(net, "g") != role:
                    continue
                group = opt.param_groups[0]
                if field.startswith("lr"):
                    assert group["lr"] == new, (key, net)
                elif field.startswith("betas"):
                    kind = config.get(f"optim.optimizer_{role}")
                    assert kind != "rmsprop", f"{key} is offered live, but RMSprop has no betas"
                    assert list(group["betas"]) == new if kind == "adam" else group["momentum"] == new[0], (key, net)
                else:
                    assert group["weight_decay"] == new, (key, net)
        elif section == "loss":  # the losses read their settings from the context the algorithm keeps
            assert getattr(trainer.algorithm.loss_ctx.settings, field) == new, key
        elif section == "seqgan":  # the family reads its section each step
            assert getattr(trainer.algorithm.s, field) == new and trainer.algorithm.config is config, key
        elif key == "train.discriminator_steps":
            calls = d_loss_spy(trainer)
            assert trainer.run(trainer.step + 1) == "done"
            assert len(calls) == new
        elif key == "tricks.label_smoothing":
            calls = d_loss_spy(trainer)
            assert trainer.run(trainer.step + 1) == "done"
            assert set(calls) == {1.0 - new}
        elif key == "tricks.instance_noise":
            assert trainer.run(trainer.step + 1) == "done"
            sigma = events.of(ev.Metrics)[-1].values["instance_noise"]
            anneal = config.tricks.instance_noise_anneal_steps
            assert sigma == pytest.approx(new * (max(0.0, 1 - trainer.step / anneal) if anneal else 1.0))
        elif key in ("tricks.r1_weight", "tricks.r1_every"):  # R1 is taken every r1_every-th D step
            every = config.tricks.r1_every
            first = len(events.of(ev.Metrics))
            assert trainer.run(trainer.step + 2 * every) == "done"
            steps = [m.step - 1 for m in events.of(ev.Metrics)[first:] if "r1_penalty" in m.values]
            k = config.train.discriminator_steps
            assert steps and all(any((s * k + d) % every == 0 for d in range(k)) for s in steps), (key, steps)
        else:
            pytest.fail(f"no check for the live setting {key}")
