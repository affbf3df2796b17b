"""StackGAN: text to image in two stages. The stages are 14×14 then 28×28, stage I trains first and stays fixed in
stage II, the losses are the definitions, resume is exact across the change of stage, typed descriptions are
read or refused in one sentence, bad descriptions are refused naming the key, the live settings act."""
import copy

import pytest
import torch
import torch.nn.functional as F

from engine import commands as cmd
from engine import events as ev
from engine.algorithms.base import build
from engine.algorithms.stackgan import STAGE1, STAGE2, TextFaithfulness
from engine.config import ConfigError
from engine.presets import load_preset
from engine.sampler import ShapeOnly
from engine.text.descriptions import FASHION_DESCRIPTIONS, kl_to_standard
from helpers import quick

SMALL = ("batch_size=8", "metrics_every=0", "sample_count=12", "report_every=1", "stackgan.g_channels=8",
         "stackgan.d_channels=8", "stackgan.residual_blocks=1")


def small(fake_dir, *overrides, **kwargs):
    return quick("stackgan_fashion", *SMALL, *overrides, fake_dir=fake_dir, **kwargs)


def state(trainer, names) -> dict:
    """Every parameter and buffer of the named networks, and of their EMA copies."""
    modules = {name: trainer.nets[name] for name in names}
    modules.update({f"ema.{name}": net for name, net in trainer.ema.items() if name in names})
    return {name: {k: v.detach().clone() for k, v in net.state_dict().items()} for name, net in modules.items()}


def same(one: dict, other: dict) -> bool:
    return one.keys() == other.keys() and all(torch.equal(one[n][k], other[n][k]) for n in one for k in one[n])


def changed(before: dict, after: dict) -> set:
    return {name for name in before if not all(torch.equal(before[name][k], after[name][k]) for k in before[name])}


def sampler_algorithm(config=None):
    config = config or load_preset("stackgan_fashion")
    return build(config, ShapeOnly((1, 28, 28), 10), "cpu", torch.Generator(), ("text_encoder", "generator1",
                                                                                 "generator2"))


def test_stage_one_trains_first_then_stage_two_with_stage_one_fixed(fake_fashion):
    trainer, events = small(fake_fashion, "stackgan.stage1_steps=3", "tricks.ema_decay=0")
    everything = STAGE1 + STAGE2
    start = state(trainer, everything)
    assert trainer.run(3) == "done"
    after_one = state(trainer, everything)
    assert changed(start, after_one) == set(STAGE1)  # text encoder, G₁ and D₁ only
    assert trainer.run(6) == "done"
    assert changed(after_one, state(trainer, everything)) == set(STAGE2)  # G₁'s batch-norm statistics included
    phases = [(e.step, e.new) for e in events.of(ev.PhaseChanged)]
    assert phases == [(3, trainer.algorithm.phase(3))] and phases[0][1].startswith("stage II")
    train = [m for m in events.of(ev.Metrics) if m.group == "train"]
    assert [("d1_loss" in m.values, "d2_loss" in m.values) for m in train] == [(True, False)] * 3 + [(False, True)] * 3
    assert all(0.0 <= m.values["text_class_accuracy"] <= 1.0 for m in train[:3])
    labels, stages = zip(*trainer.algorithm.last_stages)  # the last preview's draw
    assert labels == ("stage I", "stage II")
    assert [tuple(s.shape) for s in stages] == [(12, 1, 14, 14), (12, 1, 28, 28)]
    sample = events.of(ev.Samples)[-1]
    assert sample.picture.shape[0] > 3 * 30  # the grid, and the stage rows under it
    declared = trainer.declaration
    assert declared.steerable and trainer.algorithm.text_conditioned  # the explorer: a description box, stages
    assert set(declared.losses) == {"d1_loss", "g1_loss", "d2_loss", "g2_loss"}


@pytest.mark.parametrize("stage1_steps", [1, 0])
def test_the_losses_are_the_definitions(fake_fashion, stage1_steps):
    trainer, _ = small(fake_fashion, f"stackgan.stage1_steps={stage1_steps}", "stackgan.kl_weight=3.0",
                       "stackgan.class_weight=0.5")
    algo, nets = trainer.algorithm, {k: copy.deepcopy(v) for k, v in trainer.nets.items()}
    rng = torch.Generator(device=trainer.rng.device).set_state(trainer.rng.get_state())
    out = algo.train_step(0, report=True)
    on = rng.device
    x, y = trainer.dataset.sample(8, rng)  # the documented order of the draws
    texts = algo.bank.tokens[algo.bank.draw(y, rng)]
    wrong_class = (y + torch.randint(1, 10, y.shape, generator=rng, device=on)) % 10
    assert not torch.equal(wrong_class, y) and (wrong_class != y).all()
    wrong = algo.bank.tokens[algo.bank.draw(wrong_class, rng)]
    z, eps1 = torch.randn(8, 100, generator=rng, device=on), torch.randn(8, 64, generator=rng, device=on)
    E = nets["text_encoder"]
    with torch.no_grad():
        phi, phi_wrong = E(texts), E(wrong)
        if stage1_steps:
            D, real = nets["discriminator1"], F.avg_pool2d(x, 2)
            fake, mu, logvar = nets["generator1"](z, phi, eps1)
            assert out["class_loss"] == pytest.approx(float(F.cross_entropy(E.classify(phi), y)), rel=1e-5)
        else:
            D, real = nets["discriminator2"], x
            coarse = nets["generator1"].eval()(z, phi, eps1)[0]
            fake, mu, logvar = nets["generator2"](coarse, phi, torch.randn(8, 64, generator=rng, device=on))
        d = lambda images, t: D(images, t)
        d_loss = (-F.logsigmoid(d(real, phi)).mean()
                  + 0.5 * (-F.logsigmoid(-d(fake, phi)).mean() - F.logsigmoid(-d(real, phi_wrong)).mean()))
        kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).mean()
    tag = "1" if stage1_steps else "2"
    assert out[f"d{tag}_loss"] == pytest.approx(float(d_loss), rel=1e-5)
    assert out["kl"] == pytest.approx(float(kl), rel=1e-5) and float(kl_to_standard(mu, logvar)) == float(kl)
    assert out[f"g{tag}_loss"] == pytest.approx(float(out["g_adversarial"] + 3.0 * kl), rel=1e-5)


def test_resume_is_exact_across_the_change_of_stage(fake_fashion, tmp_path):
    sets = ("stackgan.stage1_steps=3", "checkpoint_every=2", "sample_every=2")
    straight, _ = small(fake_fashion, *sets, run_dir=tmp_path / "a")
    straight.run(5)
    first, _ = small(fake_fashion, *sets, run_dir=tmp_path / "b")
    first.run(2)
    resumed, _ = small(fake_fashion, *sets, run_dir=tmp_path / "b",
                       resume=tmp_path / "b" / "checkpoints" / "step_0000002.pt")
    assert resumed.step == 2
    resumed.run(5)
    names = STAGE1 + STAGE2
    assert same(state(straight, names), state(resumed, names))
    assert torch.equal(straight.rng.get_state(), resumed.rng.get_state())


def test_typed_descriptions_are_read_or_refused_in_one_sentence():
    algo = sampler_algorithm()
    encoded = algo.encode_text(["An ANKLE boot with a high heel", "a boot, purple and xyzzy"])
    assert encoded["labels"].tolist() == [9, -1]  # the first is the preset's description of ankle boots
    assert encoded["tokens"].shape[0] == 2 and (encoded["tokens"][1] > 0).sum() == 3  # a, boot, and
    for text, words in (("purple xyzzy!", "has no word the text encoder knows; known words include: "),
                        ("", "an empty description"), ("  ?! ", "an empty description")):
        with pytest.raises(ConfigError, match=words) as caught:
            algo.encode_text([text])
        message = str(caught.value)
        assert message.endswith(".") and ". " not in message.rstrip(".")
    inputs = algo.inputs_for_text("a leather bag with a handle", 5, torch.Generator().manual_seed(3))
    again = algo.inputs_for_text("a leather bag with a handle", 5, torch.Generator().manual_seed(3))
    assert all(torch.equal(inputs[k], again[k]) for k in inputs) and inputs["labels"].tolist() == [8] * 5
    with torch.no_grad():
        images = algo.generate(inputs, {k: v.eval() for k, v in algo.nets.items()})
    assert images.shape == (5, 1, 28, 28) and [label for label, _ in algo.last_stages] == ["stage I", "stage II"]
    fixed = algo.fixed_inputs(20, torch.Generator().manual_seed(0))
    assert fixed["labels"].tolist() == list(range(10)) * 2  # one class per column of a grid ten wide
    assert torch.equal(fixed["tokens"][0], algo.bank.tokens[0])  # row 1: each class's first description
    assert torch.equal(fixed["tokens"][10], algo.bank.tokens[1])  # row 2: the next one


@pytest.mark.parametrize("value, words", [
    (FASHION_DESCRIPTIONS[:9], "describes 9 classes, but the data has 10;"),
    ([[]] + FASHION_DESCRIPTIONS[1:], "gives class 0 no description"),
    ([["a t-shirt", " "]] + FASHION_DESCRIPTIONS[1:], "holds an empty description"),
    (["a t-shirt"] * 10, "must be a list of 10 lists of text"),
    ([[3]] + FASHION_DESCRIPTIONS[1:], "holds 3 for class 0, which is not text"),
])
def test_bad_descriptions_are_refused_naming_the_key(value, words):
    config = load_preset("stackgan_fashion")
    with pytest.raises(ConfigError, match=words) as caught:
        config.set("stackgan.descriptions", value)
    assert str(caught.value).startswith("stackgan.descriptions") and config.stackgan.descriptions == \
        FASHION_DESCRIPTIONS
    with pytest.raises(ConfigError, match=r"stackgan\.descriptions describes 1 classes"):
        load_preset("stackgan_fashion", ["stackgan.descriptions=[['a coat']]"])
    with pytest.raises(ConfigError, match="needs a labelled image data set"):
        load_preset("stackgan_fashion", ["data.dataset='folder'", "data.path='/tmp'"])


def test_kl_weight_and_the_stages_learning_rates_change_while_training(fake_fashion):
    trainer, events = small(fake_fashion, "stackgan.stage1_steps=100")
    assert {"stackgan.kl_weight", "stackgan.lr_scale_stage1", "stackgan.lr_scale_stage2"} <= set(
        trainer.config.live_keys())
    trainer.run(1)
    trainer.commands.put(cmd.Set("kl_weight", 5.0))
    trainer.commands.put(cmd.Set("lr_scale_stage1", 0.5))
    trainer.run(2)
    assert [(e.name, e.new, e.step) for e in events.of(ev.ParamChanged)] == [("kl_weight", 5.0, 1),
                                                                            ("lr_scale_stage1", 0.5, 1)]
    last = [m for m in events.of(ev.Metrics) if m.group == "train"][-1].values
    assert last["g1_loss"] == pytest.approx(last["g_adversarial"] + 5.0 * last["kl"], rel=1e-5)
    lrs = {name: opt.param_groups[0]["lr"] for name, opt in trainer.opts.items()}
    assert lrs == {"text_encoder": 1e-4, "generator1": 1e-4, "discriminator1": 1e-4, "generator2": 2e-4,
                   "discriminator2": 2e-4}


def test_the_live_probe_measures_text_faithfulness(fake_fashion):
    trainer, _ = small(fake_fashion, "stackgan.stage1_steps=1")
    trainer.run(2)
    probe = TextFaithfulness(trainer.algorithm, 40)
    assert probe.enabled
    values = probe.compute(probe.snapshot(trainer))
    assert set(values) == {"text_accuracy", "text_accuracy_stage1", "frechet_stage1", "frechet_stage1_real"}
    assert 0.0 <= values["text_accuracy"] <= 1.0 and values["frechet_stage1"] >= 0.0
    assert len(trainer.algorithm.quality_probes()) == 1
