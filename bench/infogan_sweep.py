"""Which InfoGAN settings put the categorical code on the classes, and on how many seeds?

    python bench/infogan_sweep.py [--steps 6000] [--seeds 0,1,2,3] [--workers 2] [--budget 3600]
                                  [--try NAME=KEY=VALUE[,KEY=VALUE ...]] ... [--quick]

Trains infogan_fashion once per setting and seed, many runs at once (processes sharing one GPU, or the CPU's
cores), and prints Q's code accuracy on the 10,000 test images at each quarter of --steps, then each setting's
best quarters and how many reach 60 %. By steps, not wall time: 6,000 steps are about the 15 minutes of
bench/paper_goals.py on a 2-core CPU. Without --try it runs the shipped preset ("base") and the settings the
README reports. A run still going after --budget seconds stops at its next quarter with what it has; seeds go
in order, so every setting gets its first seeds first. Uses CUDA when present.
"""

from __future__ import annotations

import argparse
import copy
import multiprocessing as mp
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TRIES = {
    "base": [],
    "cw01": ["model.info_continuous_weight=0.1"],
    "iw2": ["model.info_weight=2.0", "model.info_continuous_weight=0.5"],
    "z16": ["model.noise_dim=16"],
    "sn": ["model.spectral_norm=true"],
    "smooth": ["tricks.label_smoothing=0.1"],
    "noise": ["tricks.instance_noise=0.1", "tricks.instance_noise_anneal_steps=3000"],
    "lrg2e4": ["optim.lr_g=2e-4"],
    "cont0": ["model.info_continuous=0"],
}


def train(name: str, sets: list[str], seed: int, steps: int, deadline: float) -> tuple[str, int, list[float], float]:
    """One run in its own process: code accuracy (%) after each quarter of `steps`."""
    import torch
    torch.set_num_threads(1)  # many runs share the cores
    from paper_goals import trainer_for
    from engine.metrics.live import CodeAccuracy
    trainer, _ = trainer_for("infogan_fashion", seed, "report_every=50", *sets)
    d = trainer.nets["discriminator"]
    probe = CodeAccuracy(d, trainer.config, trainer.algorithm.dataset, trainer.config.model.info_categorical[0], 1000)
    probe.real = probe.real.to(next(d.parameters()).device)  # read on the training device: the GPU's is seconds faster
    accuracies, start = [], time.time()
    for quarter in range(1, 5):
        if time.time() > deadline:
            break
        trainer.run(steps * quarter // 4)
        reader = copy.deepcopy(d).eval()  # not snapshot(): that copy goes to the CPU
        accuracies.append(100 * probe.compute(reader)["code_accuracy"])
    return name, seed, accuracies, time.time() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--seeds", default="0,1,2,3")
    parser.add_argument("--workers", type=int, default=2, help="runs at once (15 on a 16-core GPU machine)")
    parser.add_argument("--budget", type=float, default=3600, help="seconds after which runs stop at a quarter")
    parser.add_argument("--try", dest="tries", action="append", default=[], metavar="NAME=KEY=VALUE,...",
                        help="a setting to measure (repeatable); 'base' alone is the shipped preset")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 40 steps of the preset, seed 0")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.seeds, args.tries = 40, "0", args.tries or ["base="]
    from engine.data.images import DEBIAN_FASHION_MNIST
    if not (DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file():
        print("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist); nothing to measure.")
        return
    tries = dict(TRIES)
    if args.tries:
        tries = {name: [s for s in sets.split(",") if s] for name, _, sets in (t.partition("=") for t in args.tries)}
    seeds = [int(s) for s in args.seeds.split(",")]
    deadline = time.time() + args.budget
    results: dict[str, dict[int, list[float]]] = {name: {} for name in tries}
    with ProcessPoolExecutor(args.workers, mp_context=mp.get_context("spawn")) as pool:
        runs = [pool.submit(train, name, tries[name], seed, args.steps, deadline) for seed in seeds for name in tries]
        for run in as_completed(runs):
            name, seed, accuracies, took = run.result()
            results[name][seed] = accuracies
            print(f"{name:8s} seed {seed}  code accuracy by quarter "
                  f"{', '.join(f'{a:.1f}' for a in accuracies) or '-'} %  ({took:.0f} s)", flush=True)
    print(f"\n{args.steps:,} steps; best quarter of each whole run, by seed:")
    for name, by_seed in results.items():
        whole = {seed: max(a) for seed, a in sorted(by_seed.items()) if len(a) == 4}
        if whole:
            best = list(whole.values())
            print(f"  {name:8s} {', '.join(f'{b:.1f}' for b in best)} %  mean {sum(best) / len(best):.1f}  "
                  f"≥ 60 %: {sum(b >= 60 for b in best)} of {len(best)}  ({' '.join(tries[name]) or 'the preset'})")


if __name__ == "__main__":
    main()
