"""Training on several processes: gradients averaged over the ranks, weights kept equal, rank 0 writing the
run folder, checkpoints that move between N processes and one, and a Ctrl-C that stops every rank."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from engine.checkpoint import load_checkpoint
from engine.data.synthetic import RING_STD, ring_centres
from engine.metrics.lowdim import mixture_quality
from engine.sampler import load_sampler

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="this PyTorch has no gloo backend")


def _ranks(world: int, target, *args):
    """Run target(rank, world, *args) in `world` processes joined in a gloo group; returns their results."""
    port = __import__("engine.distributed", fromlist=["free_port"]).free_port()
    results = mp.get_context("spawn").Manager().dict()
    mp.start_processes(_rank_main, args=(world, port, target, args, results), nprocs=world, start_method="spawn")
    return [results[rank] for rank in range(world)]


def _rank_main(rank, world, port, target, args, results):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    results[rank] = target(rank, world, *args)


def _accumulated_gradients(rank, world):
    from engine.distributed import Group
    group = Group(rank, world, rank, torch.device("cpu"))
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    group.average_gradients({"net": net})
    batches = [torch.randn(4, 3, generator=torch.Generator().manual_seed(r)) for r in range(world)]
    net(batches[rank]).pow(2).sum().backward()  # two backward passes adding up, like D's real and fake halves
    net(batches[rank] * 2).sum().backward()
    grads = [p.grad.clone() for p in net.parameters()]
    group.close()
    reference = torch.nn.Linear(3, 2)  # one process, the same weights, every rank's batch: the mean gradient
    reference.load_state_dict(net.state_dict())
    for b in batches:
        (reference(b).pow(2).sum() + reference(b * 2).sum()).div(world).backward()
    return [g.numpy() for g in grads], [p.grad.numpy() for p in reference.parameters()]


def test_gradients_are_the_mean_over_the_ranks_after_every_backward():
    results = _ranks(2, _accumulated_gradients)
    for grads, reference in results:
        for g, r in zip(grads, reference):
            np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(results[0][0][0], results[1][0][0])


def _train_ring(rank, world, steps):
    from engine.distributed import Group
    from engine.loop import Trainer
    from engine.presets import load_preset
    config = load_preset("ring8", ["train.report_every=10", "train.sample_every=1000"])
    group = Group(rank, world, rank, torch.device("cpu"))
    trainer = Trainer(config, group=group)
    first_fakes = trainer.algorithm.dataset.sample(4, trainer.rng)[0]  # each rank draws its own noise and data
    trainer.run(steps)
    weights = {k: v.clone() for k, v in trainer.nets["generator"].state_dict().items()}
    agree = group.weights_agree(list(trainer.nets.values()))
    group.close()
    return {"weights": weights, "agree": agree, "step": trainer.step, "draw": first_fakes}


def test_two_ranks_keep_equal_weights_while_drawing_different_batches():
    a, b = _ranks(2, _train_ring, 60)
    assert a["agree"] and b["agree"] and a["step"] == b["step"] == 60
    assert all(torch.equal(a["weights"][k], b["weights"][k]) for k in a["weights"])
    assert not torch.equal(a["draw"], b["draw"])


def _cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=240, **kwargs)


@pytest.mark.slow
def test_ring8_on_two_processes_learns_and_its_checkpoints_move_between_two_and_one(tmp_path):
    run = tmp_path / "two"
    done = _cli("train", "ring8", "--nproc", "2", "--steps", "2000", "--out", str(run))
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(p.name for p in (run / "checkpoints").glob("*.pt"))[-1] == "step_0002000.pt"
    assert not list(tmp_path.glob("two-*")) and len(list((run / "samples").glob("*.png"))) >= 2  # rank 0 alone
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [row["step"] for row in rows if "group" not in row]
    assert steps == sorted(set(steps)) and steps[-1] == 2000  # one writer: no step twice
    sampler = load_sampler(run / "checkpoints" / "step_0002000.pt")
    points = sampler.generate(sampler.algorithm.random_inputs(2500, torch.Generator().manual_seed(1))).numpy()
    assert mixture_quality(points, ring_centres().numpy(), RING_STD)["modes_captured"] >= 4

    one = _cli("train", "--resume", str(run / "checkpoints" / "step_0002000.pt"), "--steps", "2100")
    assert one.returncode == 0, one.stderr[-2000:]
    assert load_checkpoint(run / "checkpoints" / "step_0002100.pt")["step"] == 2100
    again = _cli("train", "--resume", str(run / "checkpoints" / "step_0002100.pt"), "--steps", "2200",
                 "--nproc", "2")
    assert again.returncode == 0, again.stderr[-2000:]
    assert load_checkpoint(run / "checkpoints" / "step_0002200.pt")["step"] == 2200


def test_ctrl_c_stops_every_rank_and_rank_0_saves(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "train", "ring8", "--nproc", "2", "--steps",
                             "1000000", "--out", str(run), "--set", "report_every=1"],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        for line in proc.stderr:
            if "steps/s" in line:
                break
        os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the launcher and both ranks
        _, rest = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, rest[-2000:]
    last = sorted((run / "checkpoints").glob("step_*.pt"))[-1]
    assert load_checkpoint(last)["step"] > 0 and "stopped" in rest
    # the launcher waited for every rank before it exited, so nothing of the run may be left
    leftover = subprocess.run(["pgrep", "-f", str(run)], capture_output=True, text=True).stdout.split()
    assert leftover == []
