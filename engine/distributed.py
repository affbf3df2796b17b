"""Training on several processes (CPU cores or GPUs) with torch.distributed: gloo on CPU, NCCL on CUDA.

Each process (a rank) runs the same loop on its own shard of the data with its own noise; gradients are
averaged over the ranks as they are accumulated, so every rank takes the same optimizer step and the
weights stay equal. Rank 0 alone writes the run folder (checkpoints, samples, metrics), takes commands and
decides when to stop; the others follow it at the top of every step. A checkpoint is the one-process format
(rank 0's state), so a run from N processes resumes on one and the other way round.

Why not the DistributedDataParallel wrapper: a GAN step runs D two or three times before one backward,
runs D inside G's step (where D's gradients are thrown away), and the families reach into their networks'
attributes; DDP's reducer expects one forward per backward and renames every weight "module.*". The
gradient hooks below do the same all-reduce DDP does, with none of those constraints.

Launch: `gan-studio train PRESET --nproc N` starts N local processes (this module's `launch`);
`torchrun --nproc-per-node N -m engine.cli train PRESET` and torchrun's multi-node rendezvous work too,
since a rank reads RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT from its environment.
"""

from __future__ import annotations

import datetime
import os
import signal
import socket
import subprocess
import sys
import time

import torch
import torch.distributed as dist

from engine import events as ev
from engine.config import ConfigError

WAIT = datetime.timedelta(days=7)  # a paused rank 0 keeps the others waiting at the next step: no timeout


def from_environment(config) -> "Group | None":
    """The process group this process belongs to, from torchrun's variables; None for a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return None
    if not dist.is_available():
        raise ConfigError("This build of PyTorch has no torch.distributed, so --nproc cannot be used.")
    from engine.device import pick_device
    device = local_device(pick_device(config.train.device))
    return Group(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")), device)


def local_device(device: torch.device) -> torch.device:
    """The device of this rank: its own GPU (LOCAL_RANK) when training on CUDA."""
    if device.type == "cuda" and int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
        index = int(os.environ.get("LOCAL_RANK", "0")) % max(1, torch.cuda.device_count())
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return device


class Group:
    def __init__(self, rank: int, world: int, local_rank: int, device: torch.device):
        self.rank, self.world, self.local_rank, self.device = rank, world, local_rank, device
        if not dist.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            dist.init_process_group(backend, rank=rank, world_size=world, timeout=WAIT)
        self._settings_version = self._rollbacks = 0  # rank 0's counts as last followed
        self._hooks: list = []

    @property
    def leader(self) -> bool:
        return self.rank == 0

    def close(self) -> None:
        """Leave the group together: a rank that tears its connections down while another still talks (rank 0
        writing its last checkpoint) can abort in gloo's threads, so the ranks meet first (a minute at most)."""
        for hook in self._hooks:
            hook.remove()
        if dist.is_initialized():
            try:
                if dist.get_backend() == "gloo":
                    dist.monitored_barrier(timeout=datetime.timedelta(seconds=60))
                else:
                    dist.barrier()
            except Exception:  # noqa: BLE001 - a peer that died: leave anyway
                pass
            dist.destroy_process_group()

    # -- keeping the weights equal -------------------------------------------------------------------
    def average_gradients(self, nets: dict) -> None:
        """Average every gradient over the ranks at the end of each backward pass, as DDP does: a hook notes
        each parameter whose gradient the pass accumulated, and one all-reduce of them all (flattened, in a
        fixed order) runs when the pass ends, so the mixed-precision scaler and the gradient norms see the
        averaged gradients. A second backward adding to an averaged gradient is averaged again, which by
        linearity still gives the mean of the sums."""
        from torch.autograd import Variable
        order: dict[int, int] = {}
        pending: list = []

        def reduce() -> None:
            params = sorted(pending, key=lambda p: order[id(p)])
            pending.clear()
            for dtype in {p.grad.dtype for p in params}:
                grads = [p.grad for p in params if p.grad.dtype == dtype]
                flat = torch.cat([g.reshape(-1) for g in grads])
                dist.all_reduce(flat, op=dist.ReduceOp.SUM)
                flat.div_(self.world)
                offset = 0
                for g in grads:
                    g.copy_(flat[offset:offset + g.numel()].view_as(g))
                    offset += g.numel()

        def hook(param: torch.Tensor) -> None:
            if not pending:
                Variable._execution_engine.queue_callback(reduce)  # runs once, when this backward ends
            pending.append(param)

        for net in nets.values():
            for param in net.parameters():
                if param.requires_grad and id(param) not in order:
                    order[id(param)] = len(order)
                    self._hooks.append(param.register_post_accumulate_grad_hook(hook))

    @torch.no_grad()
    def broadcast_weights(self, modules) -> None:
        """Rank 0's parameters and buffers to every rank (at the start, after a roll back or a resync)."""
        for module in modules:
            for tensor in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(tensor.data, src=0)

    @torch.no_grad()
    def weights_agree(self, modules) -> bool:
        """Whether every rank holds the same parameters (one checksum compared by max and min)."""
        total = torch.zeros(1, dtype=torch.float64, device=self.device)
        for module in modules:
            for param in module.parameters():
                total += param.detach().double().sum()
        low, high = total.clone(), total.clone()
        dist.all_reduce(low, op=dist.ReduceOp.MIN)
        dist.all_reduce(high, op=dist.ReduceOp.MAX)
        return bool(torch.equal(low, high))

    # -- following rank 0 ----------------------------------------------------------------------------
    def follow(self, trainer) -> None:
        """At the top of a step: rank 0's stop decision, live settings and roll backs reach every rank."""
        flags = torch.tensor([int(trainer.stop_requested), int(trainer.save_on_stop),
                              trainer.settings_version, trainer.rollbacks], dtype=torch.long, device=self.device)
        dist.broadcast(flags, src=0)
        stop, save, version, rollbacks = (int(v) for v in flags.tolist())
        if version != self._settings_version:
            self._settings_version = version
            live = [{key: trainer.config.get(key) for key in trainer.config.live_keys()} if self.leader else None]
            dist.broadcast_object_list(live, src=0)
            if not self.leader:
                for key, value in live[0].items():
                    trainer.config.set(key, value, check=False)
                trainer.algorithm.settings_changed()
        if rollbacks != self._rollbacks:
            self._rollbacks = rollbacks
            self.broadcast_state(trainer)
        if not self.leader:
            trainer.stop_requested, trainer.save_on_stop = bool(stop), bool(save)

    def broadcast_state(self, trainer) -> None:
        """Rank 0's whole training state (weights, optimizer moments, step) to the others: after a roll back."""
        state = [trainer.state_dict() if self.leader else None]
        dist.broadcast_object_list(state, src=0)
        if not self.leader:
            trainer._restore(state[0])
            trainer.rng.manual_seed(rank_seed(trainer.config.train.seed, self.rank, trainer.step))

    def check_agreement(self, trainer) -> None:
        """At a checkpoint: if the ranks' weights drifted apart (a skipped mixed-precision step on one rank),
        give every rank rank 0's weights again and say so."""
        modules = list(trainer.nets.values())
        if not self.weights_agree(modules):
            self.broadcast_weights(modules)
            trainer.emit(ev.Warning(f"The {self.world} processes' weights had drifted apart by step {trainer.step}; "
                                    f"rank 0's were copied to the others."))


    def join(self, trainer) -> None:
        """Make a freshly built (or resumed) trainer one rank of the group: its shard of the data, its own
        noise, rank 0's weights, gradients averaged from now on; only rank 0 measures quality."""
        if hasattr(trainer.dataset, "shard"):
            trainer.dataset.shard(self.rank, self.world)
        if not self.leader:
            trainer.rng.manual_seed(rank_seed(trainer.config.train.seed, self.rank, trainer.step))
            trainer.quality = None
        modules = list(trainer.nets.values()) + list(trainer.ema.values())
        self.broadcast_weights(modules)
        self.average_gradients(trainer.nets)


def rank_seed(seed: int, rank: int, step: int = 0) -> int:
    """The noise seed of a rank other than 0 (rank 0 keeps the single-process stream, saved in checkpoints)."""
    return (seed * 1_000_003 + rank * 7_919 + step * 104_729) % (2 ** 63)


# -- the local launcher ------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch(argv: list[str], nproc: int) -> int:
    """Run `gan-studio train` (argv without --nproc) in nproc processes on this machine and wait for them.
    Ctrl-C reaches every process (rank 0 saves and tells the others to stop); SIGTERM is passed to rank 0.
    If one process fails, the others are ended and its exit status is returned."""
    if nproc < 1:
        raise ConfigError(f"--nproc {nproc} is not allowed; give 1 or more processes.")
    env = dict(os.environ, WORLD_SIZE=str(nproc), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()))
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    procs = [subprocess.Popen([sys.executable, "-m", "engine.cli", *argv],
                              env=dict(env, RANK=str(rank), LOCAL_RANK=str(rank)))
             for rank in range(nproc)]
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: procs[0].send_signal(signal.SIGTERM))
    try:
        while True:
            codes = [proc.poll() for proc in procs]
            failed = [code for code in codes if code not in (None, 0)]
            if failed or all(code == 0 for code in codes):
                break
            time.sleep(0.2)
    except KeyboardInterrupt:  # every process got the same Ctrl-C; rank 0 saves and stops the others
        for proc in procs:
            proc.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    codes = [proc.returncode for proc in procs]
    return next((code for code in codes if code != 0), 0)
