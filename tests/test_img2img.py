"""Image-to-image translation (pix2pix, CycleGAN, DistanceGAN, DTN, SRGAN): the built-in tasks' data, every family
trains and draws its rows, pix2pix learns, resume is exact, bad presets are refused, a person's own folders train,
the CLI samples and scores a checkpoint, and the live settings take effect."""
import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine import algorithms
from engine import events as ev
from engine.cli import main as cli
from engine.config import ConfigError
from engine.data import DataError
from engine.img2img import data as pairs
from engine.img2img import metrics
from engine.loop import Trainer
from engine.presets import load_preset
from helpers import Recorder, trained_parameters, unmoved_networks

REAL_FASHION = Path("/usr/share/datasets/fashion-mnist")
needs_fashion = pytest.mark.skipif(not REAL_FASHION.is_dir(),
                                   reason="needs Fashion-MNIST: apt-get install dataset-fashion-mnist")
PRESETS = {"pix2pix": "pix2pix_edges", "cyclegan": "cyclegan_edges", "distancegan": "distancegan_edges",
           "dtn": "dtn_edges", "srgan": "srgan_fashion"}
TASKS = {"pix2pix": "edges", "cyclegan": "edges_unpaired", "distancegan": "edges_unpaired",
         "dtn": "edges_unpaired", "srgan": "lowres"}
SMALL = {"pix2pix": ["pix2pix.g_filters=16", "pix2pix.d_filters=16"],
         "cyclegan": ["cyclegan.g_filters=8", "cyclegan.g_blocks=1", "cyclegan.d_filters=8", "cyclegan.pool_size=4"],
         "distancegan": ["distancegan.g_filters=8", "distancegan.g_blocks=1", "distancegan.d_filters=8",
                         "distancegan.distance_samples=16"],
         "dtn": ["dtn.g_filters=8", "dtn.d_filters=8"],
         "srgan": ["srgan.g_filters=8", "srgan.g_blocks=1", "srgan.d_filters=8", "srgan.pretrain_steps=1"]}


# -- synthetic data ----------------------------------------------------------------------------------------
def shapes(n, seed, size=32):
    """n grey uint8 items: a filled rectangle of a random brightness at a random place on black."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 1, size, size, dtype=torch.uint8)
    for i in range(n):
        h, w = torch.randint(6, 16, (2,), generator=g).tolist()
        r, c = int(torch.randint(0, size - h, (1,), generator=g)), int(torch.randint(0, size - w, (1,), generator=g))
        x[i, :, r:r + h, c:c + w] = int(torch.randint(120, 256, (1,), generator=g))
    return x


def synthetic(task, n=64, seed=0):
    """A built-in task made of `shapes` instead of Fashion-MNIST: training items and a held-out set of 16."""
    items, held = shapes(n, seed), shapes(16, seed + 1000)
    if task == "edges_unpaired":  # A = items of the first half, B = edge maps of the second half's items
        return pairs.PairData(items[:n // 2], pairs.edge_map(items[n // 2:]), False, held, pairs.edge_map(held),
                              "shapes", task)
    make = pairs.task_input
    return pairs.PairData(make(task, items), items, True, make(task, held), held, "shapes", task)


def squares(n, seed):
    """A = the outline of a white square at a random place, B = the filled square: a task a U-Net can learn."""
    g = torch.Generator().manual_seed(seed)
    a = torch.zeros(n, 1, 32, 32, dtype=torch.uint8)
    b = a.clone()
    for i in range(n):
        s = int(torch.randint(10, 24, (1,), generator=g))
        r, c = torch.randint(0, 33 - s, (2,), generator=g).tolist()
        b[i, :, r:r + s, c:c + s] = 255
        a[i, :, r:r + s, c:c + s] = 255
        a[i, :, r + 1:r + s - 1, c + 1:c + s - 1] = 0
    return a, b


def trainer_for(family, *overrides, dataset=None, run_dir=None, **kwargs):
    config = load_preset(PRESETS[family], ["metrics_every=0", "batch_size=8", "sample_count=4", *SMALL[family],
                                           *overrides])
    events = Recorder()
    trainer = Trainer(config, run_dir=run_dir, emit=events,
                      dataset=dataset if dataset is not None else synthetic(TASKS[family]), **kwargs)
    return trainer, events


def state_of(trainer) -> dict:
    """Every tensor of every network (parameters and buffers), by network name."""
    return {name: {k: v.detach().clone() for k, v in net.state_dict().items()} for name, net in trainer.nets.items()}


def same_state(one: dict, other: dict) -> bool:
    return one.keys() == other.keys() and all(
        one[n].keys() == other[n].keys() and all(torch.equal(one[n][k], other[n][k]) for k in one[n]) for n in one)


def held_out_l1(trainer, data) -> float:
    """L1 of the sampling networks (copied, in eval mode, as the probe uses them) on the held-out inputs."""
    nets = {name: copy.deepcopy(net).eval() for name, net in trainer.nets.items()}
    held = data.held_out(len(data.held_a))
    with torch.no_grad():
        return metrics.l1(trainer.algorithm.translate(held["a"], "AtoB", nets), held["b"])


# -- 1. data -----------------------------------------------------------------------------------------------
def test_the_edge_detector_draws_white_edges_on_black_the_same_every_time():
    items = shapes(8, 3)
    edges = pairs.edge_map(items)
    assert edges.shape == items.shape and edges.dtype == torch.uint8
    assert torch.equal(edges, pairs.edge_map(items.clone()))  # deterministic
    assert set(edges.unique().tolist()) <= {0, 255}
    square = torch.zeros(1, 1, 32, 32, dtype=torch.uint8)
    square[..., 8:24, 8:24] = 200
    e = pairs.edge_map(square)[0, 0]
    assert e[8, 16] == 255 and e[23, 16] == 255 and e[16, 8] == 255 and e[16, 23] == 255  # its outline is white
    assert e[16, 16] == 0 and e[2, 2] == 0 and e[30, 30] == 0  # the flat inside and the background are black
    colour = pairs.edge_map(square.expand(2, 3, -1, -1).contiguous())
    assert colour.shape == (2, 3, 32, 32) and torch.equal(colour[0, 2], e)


def test_low_resolution_is_four_times_smaller_by_block_averages():
    items = shapes(4, 5)
    small = pairs.low_resolution(items)
    assert small.shape == (4, 1, 8, 8) and small.dtype == torch.uint8
    block = items[2, 0, 8:12, 4:8].float().mean()
    assert abs(int(small[2, 0, 2, 1]) - float(block)) <= 0.5
    assert torch.equal(pairs.task_input("lowres", items), small) and torch.equal(
        pairs.task_input("edges", items), pairs.edge_map(items))


@needs_fashion
def test_builtin_tasks_hold_out_the_test_split_and_unpaired_halves_are_disjoint():
    from engine.data import make_dataset
    config = load_preset("cyclegan_edges")
    train = make_dataset(config).images.cpu()
    test = make_dataset(config, train=False).images.cpu()
    unpaired = pairs.builtin_task(config, "edges_unpaired")
    half = len(train) // 2
    some = torch.cat([torch.arange(300), torch.arange(half - 300, half)])  # edge maps of a few, to keep it quick
    assert not unpaired.paired and len(unpaired.a) == len(unpaired.b) == half
    assert torch.equal(unpaired.a, train[:half]) and torch.equal(unpaired.b[some], pairs.edge_map(train[half:][some]))
    behind_b = {bytes(x.numpy()) for x in train[half:]}
    assert not any(bytes(x.numpy()) in behind_b for x in unpaired.a)  # no item of A is behind an edge map of B
    in_b = {bytes(x.numpy()) for x in unpaired.b}
    coinciding = sum(bytes(x.numpy()) in in_b for x in pairs.edge_map(unpaired.a[:3000]))
    assert coinciding <= 2, coinciding  # different items rarely share an edge map (2 of all 30000 do)
    # the held-out set: the test split's true pairs (item, its edge map), none of them a training image
    assert torch.equal(unpaired.held_a, test) and torch.equal(unpaired.held_b[:300], pairs.edge_map(test[:300]))
    seen = {bytes(x.numpy()) for x in train}
    assert sum(bytes(x.numpy()) in seen for x in test) == 0
    held = unpaired.held_out(3)
    assert torch.equal(held["a"], pairs.scaled(test[:3])) and torch.equal(held["b"], pairs.scaled(unpaired.held_b[:3]))
    edges = pairs.builtin_task(config, "edges", train=False)  # what `gan-studio sample` loads: the test split only
    assert torch.equal(edges.held_a, unpaired.held_b) and torch.equal(edges.held_b, test)
    lowres = pairs.builtin_task(config, "lowres", train=False)
    assert lowres.input_shape == (1, 8, 8) and lowres.shape == (1, 32, 32)
    assert torch.equal(lowres.held_a, pairs.low_resolution(test)) and torch.equal(lowres.held_b, test)


# -- 2. every family trains and draws its rows -------------------------------------------------------------
@pytest.mark.parametrize("family", list(PRESETS))
def test_each_family_trains_checkpoints_and_draws_its_rows(family, tmp_path):
    trainer, events = trainer_for(family, "checkpoint_every=2", "sample_every=2", "report_every=1", run_dir=tmp_path)
    before = trained_parameters(trainer)
    assert trainer.run(3) == "done", [e for e in events.of(ev.Failed)]
    assert unmoved_networks(trainer, before) == []
    assert (tmp_path / "checkpoints" / "step_0000003.pt").is_file()
    pictures = sorted((tmp_path / "samples").glob("*.png"))
    assert pictures and pictures[-1].name == "step_0000003.png"
    with Image.open(pictures[-1]) as img:
        width, height = img.size
    panels = 6 if family == "cyclegan" else 3  # A, A->B, ->A, B, B->A, ->B; or input, output, target
    assert panels * 32 <= width < (panels + 1) * 32, (family, width)
    assert 4 * 32 <= height < 6 * 32  # four rows under their labels
    values = [m.values for m in events.of(ev.Metrics) if m.group == "train"][-1]
    assert all(np.isfinite(v) for v in values.values())


# -- 3. pix2pix learns; gan_weight = 0 leaves D alone ------------------------------------------------------
def test_pix2pix_learns_to_fill_squares():
    a, b = squares(256, 0)
    held_a, held_b = squares(64, 1)
    data = pairs.PairData(a, b, True, held_a, held_b, "squares", "edges")
    trainer, _ = trainer_for("pix2pix", "batch_size=16", dataset=data)
    start = held_out_l1(trainer, data)
    copying = metrics.l1(pairs.scaled(held_a), pairs.scaled(held_b))  # the input itself as the output
    trainer.run(200)
    end = held_out_l1(trainer, data)
    assert end < 0.6 * start and end < 0.8 * copying, (start, end, copying)


def test_pix2pix_without_its_gan_term_never_touches_d():
    trainer, events = trainer_for("pix2pix", "pix2pix.gan_weight=0", "report_every=1")
    d_before = state_of(trainer)["discriminator"]
    before = trained_parameters(trainer)
    assert trainer.run(3) == "done"
    assert unmoved_networks(trainer, before) == ["discriminator"]
    assert same_state({"d": d_before}, {"d": state_of(trainer)["discriminator"]})  # its batch statistics too
    values = events.of(ev.Metrics)[-1].values
    assert "d_loss" not in values and values["g_loss"] == pytest.approx(100.0 * values["l1"], rel=1e-5)


# -- 4. resume -----------------------------------------------------------------------------------------------
def test_cyclegan_resumes_bit_for_bit_with_its_pools(tmp_path):
    sets = ("checkpoint_every=3", "sample_every=3")
    straight, _ = trainer_for("cyclegan", *sets, run_dir=tmp_path / "a")
    straight.run(6)
    first, _ = trainer_for("cyclegan", *sets, run_dir=tmp_path / "b")
    first.run(3)
    assert len(first.algorithm.pools["a"].images) == 4  # full after the first step of 8: later steps swap
    resumed, _ = trainer_for("cyclegan", *sets, run_dir=tmp_path / "b",
                             resume=tmp_path / "b" / "checkpoints" / "step_0000003.pt")
    assert resumed.step == 3
    assert all(torch.equal(x, y) for x, y in zip(first.algorithm.pools["b"].images, resumed.algorithm.pools["b"].images))
    resumed.run(6)
    assert same_state(state_of(straight), state_of(resumed))
    for name in ("a", "b"):
        ours, theirs = straight.algorithm.pools[name].images, resumed.algorithm.pools[name].images
        assert len(ours) == len(theirs) == 4 and all(torch.equal(x, y) for x, y in zip(ours, theirs))


@pytest.mark.parametrize("family", ["pix2pix", "distancegan", "dtn", "srgan"])
def test_the_other_families_resume_bit_for_bit(family, tmp_path):
    sets = ("checkpoint_every=2", "sample_every=2")
    straight, _ = trainer_for(family, *sets, run_dir=tmp_path / "a")
    straight.run(4)
    first, _ = trainer_for(family, *sets, run_dir=tmp_path / "b")
    first.run(2)
    resumed, _ = trainer_for(family, *sets, run_dir=tmp_path / "b",
                             resume=tmp_path / "b" / "checkpoints" / "step_0000002.pt")
    resumed.run(4)
    assert same_state(state_of(straight), state_of(resumed))


# -- 5. bad presets ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("preset, override, key", [
    ("pix2pix_edges", "pix2pix.task='edges_unpaired'", r"pix2pix\.task = 'edges_unpaired'"),
    ("srgan_fashion", "data.channels=3", r"srgan\.content = 'evaluator'.*data\.channels = 3"),
    ("dtn_edges", "data.channels=3", r"data\.channels = 3"),
    ("pix2pix_edges", "data.dataset='ring8'", r"data\.dataset = 'ring8'"),
    ("cyclegan_edges", "data.image_size=28", r"data\.image_size = 28"),
])
def test_bad_presets_are_refused_in_one_sentence_naming_the_key(preset, override, key):
    with pytest.raises(ConfigError, match=key) as caught:
        load_preset(preset, [override])
    text = str(caught.value)
    assert text.count(". ") == 0 and text.endswith(".")  # one sentence


# -- 6, 7. a person's own folders; the CLI -----------------------------------------------------------------
def write_pairs(folder: Path, n: int, with_b: bool = True) -> Path:
    a, b = squares(n, 7)
    for i in range(n):
        (folder / "A").mkdir(parents=True, exist_ok=True)
        Image.fromarray(a[i, 0].numpy()).save(folder / "A" / f"{i:03d}.png")
        if with_b:
            (folder / "B").mkdir(parents=True, exist_ok=True)
            Image.fromarray(b[i, 0].numpy()).save(folder / "B" / f"{i:03d}.png")
    return folder


FOLDER_SETS = ["data.dataset='folder'", "pix2pix.g_filters=16", "pix2pix.d_filters=16", "batch_size=4",
               "sample_count=4", "metrics_every=0"]


def test_folder_pairs_train_sample_and_score_from_the_cli(tmp_path, capsys):
    folder = write_pairs(tmp_path / "data", 6)
    sets = [arg for item in FOLDER_SETS + [f"data.path={str(folder)!r}"] for arg in ("--set", item)]
    assert cli(["train", "pix2pix_edges", "--steps", "3", "--out", str(tmp_path / "run"), *sets]) == 0
    checkpoint = tmp_path / "run" / "checkpoints" / "step_0000003.pt"
    assert checkpoint.is_file() and list((tmp_path / "run" / "samples").glob("*.png"))
    capsys.readouterr()
    assert cli(["sample", str(checkpoint), "--n", "2", "--out", str(tmp_path / "rows.png")]) == 0
    with Image.open(tmp_path / "rows.png") as img:  # its one held-out pair: input | output | target
        assert 3 * 32 <= img.size[0] < 4 * 32
    capsys.readouterr()
    assert cli(["eval", str(checkpoint), "--n", "10"]) == 0
    out = capsys.readouterr().out
    values = {line.split()[0]: float(line.split()[1]) for line in out.splitlines()[1:]}
    assert {"l1", "psnr", "ssim"} <= set(values), out
    assert 0 <= values["l1"] <= 1 and values["psnr"] > 0 and -1 <= values["ssim"] <= 1


def test_a_folder_without_b_is_refused_with_one_sentence(tmp_path, capsys):
    folder = write_pairs(tmp_path / "data", 3, with_b=False)
    config = load_preset("pix2pix_edges", FOLDER_SETS + [f"data.path={str(folder)!r}"])
    with pytest.raises(DataError, match="has A/ but no B/"):
        Trainer(config, run_dir=None)
    sets = [arg for item in FOLDER_SETS + [f"data.path={str(folder)!r}"] for arg in ("--set", item)]
    assert cli(["train", "pix2pix_edges", "--steps", "3", "--out", str(tmp_path / "run"), *sets]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gan-studio: ") and "has A/ but no B/" in err and "Traceback" not in err


def test_srgan_trains_on_folder_pairs_made_four_times_smaller(tmp_path):
    """A folder's A pictures are read at data.image_size like B's; SRGAN's inputs are them 4x smaller."""
    folder = write_pairs(tmp_path / "data", 6)
    config = load_preset("srgan_fashion", ["data.dataset='folder'", f"data.path={str(folder)!r}", "metrics_every=0"])
    data = algorithms.get("srgan").make_data(config)  # what the family makes of the folder
    assert data.input_shape == (1, 8, 8) and data.shape == (1, 32, 32)
    a, _ = squares(6, 7)
    assert torch.equal(data.a[0], pairs.low_resolution(a[:1])[0])
    sets = [arg for item in ("data.dataset='folder'", f"data.path={str(folder)!r}", "metrics_every=0",
                             "batch_size=4", "sample_count=4", *SMALL["srgan"]) for arg in ("--set", item)]
    assert cli(["train", "srgan_fashion", "--steps", "3", "--out", str(tmp_path / "run"), *sets]) == 0
    checkpoint = tmp_path / "run" / "checkpoints" / "step_0000003.pt"
    assert cli(["sample", str(checkpoint), "--n", "2", "--out", str(tmp_path / "rows.png")]) == 0
    with Image.open(tmp_path / "rows.png") as img:
        assert 3 * 32 <= img.size[0] < 4 * 32


@needs_fashion
def test_the_cli_samples_and_scores_a_pix2pix_checkpoint_on_the_builtin_edges(tmp_path, capsys):
    sets = [arg for item in ("pix2pix.g_filters=8", "pix2pix.d_filters=8", "metrics_every=0", "sample_count=4")
            for arg in ("--set", item)]
    assert cli(["train", "pix2pix_edges", "--steps", "2", "--out", str(tmp_path / "run"), *sets]) == 0
    checkpoint = tmp_path / "run" / "checkpoints" / "step_0000002.pt"
    capsys.readouterr()
    assert cli(["sample", str(checkpoint), "--n", "5", "--out", str(tmp_path / "rows.png")]) == 0
    with Image.open(tmp_path / "rows.png") as img:
        assert 3 * 32 <= img.size[0] < 4 * 32 and img.size[1] >= 5 * 32
    capsys.readouterr()
    assert cli(["eval", str(checkpoint), "--n", "64"]) == 0
    out = capsys.readouterr().out
    values = {line.split()[0]: float(line.split()[1]) for line in out.splitlines()[1:]}
    assert {"l1", "psnr", "ssim", "frechet_distance"} <= set(values), out


# -- 8. live settings --------------------------------------------------------------------------------------
def test_pix2pix_l1_weight_changes_while_training():
    trainer, events = trainer_for("pix2pix", "pix2pix.gan_weight=0", "report_every=1")
    trainer.apply_set("pix2pix.l1_weight", 0.0)
    assert not events.of(ev.CommandRejected)
    before = trained_parameters(trainer)
    assert trainer.run(1) == "done"
    values = events.of(ev.Metrics)[-1].values
    assert values["g_loss"] == 0.0 and values["l1"] > 0
    assert set(unmoved_networks(trainer, before)) == {"generator", "discriminator"}  # a zero loss moves nothing
    trainer.apply_set("l1_weight", 50.0)  # the short name works too
    assert trainer.run(2) == "done"
    values = events.of(ev.Metrics)[-1].values
    assert values["g_loss"] == pytest.approx(50.0 * values["l1"], rel=1e-5)


def test_cyclegan_cycle_weight_changes_while_training():
    trainer, events = trainer_for("cyclegan", "report_every=1")
    assert trainer.run(1) == "done"
    values = events.of(ev.Metrics)[-1].values
    assert values["g_loss"] > values["g_gan"] + 1.0  # λ_cyc = 10 weighs the cycle and identity terms
    trainer.apply_set("cyclegan.cycle_weight", 0.0)
    assert not events.of(ev.CommandRejected)
    assert trainer.run(2) == "done"
    values = events.of(ev.Metrics)[-1].values
    assert values["g_loss"] == pytest.approx(values["g_gan"], rel=1e-6) and values["cycle"] > 0


def test_srgan_adversarial_weight_changes_while_training():
    trainer, events = trainer_for("srgan", "report_every=1", "srgan.pretrain_steps=0", "srgan.content='mse'")
    assert trainer.run(1) == "done"
    assert "d_loss" in events.of(ev.Metrics)[-1].values
    trainer.apply_set("srgan.adversarial_weight", 0.0)
    assert not events.of(ev.CommandRejected)
    d_before = state_of(trainer)["discriminator"]
    assert trainer.run(2) == "done"
    values = events.of(ev.Metrics)[-1].values
    assert "d_loss" not in values and values["g_loss"] == pytest.approx(values["content"], rel=1e-6)
    assert same_state({"d": d_before}, {"d": state_of(trainer)["discriminator"]})  # D is no longer trained


@pytest.mark.parametrize("family, keys", [
    ("pix2pix", {"l1", "psnr", "ssim", "sharpness", "target_sharpness", "frechet_distance"}),
    ("cyclegan", {"l1_ab", "psnr_ab", "ssim_ab", "l1_ba", "ssim_ba", "cycle_l1_ab", "cycle_l1_ba"}),
    ("dtn", {"l1", "psnr", "ssim", "frechet_distance"}),
])
def test_the_live_probe_scores_the_held_out_translations(family, keys):
    trainer, events = trainer_for(family, "metrics_every=2", "metrics_samples=16")
    assert trainer.run(2) == "done", [e.message for e in events.of(ev.Failed)]
    quality = [m.values for m in events.of(ev.Metrics) if m.group == "quality"]
    assert quality and keys <= set(quality[-1]), quality
    values = quality[-1]
    for name in keys & {"l1", "l1_ab", "l1_ba", "cycle_l1_ab", "cycle_l1_ba"}:
        assert 0 <= values[name] <= 1
    assert all(-1 <= values[k] <= 1 for k in keys if k.startswith("ssim"))
