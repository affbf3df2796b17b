"""Fault campaigns: kill -9 and resume, a full disk, and fuzzed live commands against a running trainer.

    python bench/faults.py kill [--kills 50] [--seed 0] [--interval 20] [--keep]
    python bench/faults.py disk [--runs 2] [--keep]
    python bench/faults.py fuzz [--sequences 1000] [--seed 0]
    python bench/faults.py window [--window-kills 10] [--seed 0] [--interval 20] [--keep]
    python bench/faults.py all  [--kills 50] [--runs 2] [--sequences 1000] [--window-kills 10]

Each campaign prints one summary line ending in OK or FAIL (with the first reasons) and the script exits
non-zero when any campaign fails. tests/test_fault_campaigns.py runs each one small.

kill   A headless ring8 run (a subprocess of `gan-studio train`) is SIGKILLed at a random moment (seeded:
       0.3-2 s after it starts printing progress) and resumed from its newest checkpoint, over and over; the
       last resume trains to its end. Then: every checkpoint loads, no temp file is left, every jsonl line
       parses, metrics.jsonl has every report step exactly once and in order, and no kill lost more than one
       checkpoint interval plus one report interval of training (last metrics row before the kill minus the
       step resumed from).
disk   Training runs with RLIMIT_FSIZE small (SIGXFSZ ignored, so a write fails with EFBIG as on a full disk):
       a limit between the step-0 checkpoint (no optimiser state yet) and later ones, so a periodic checkpoint
       hits it; and, with --runs 2, a tiny model whose metrics.jsonl grows into the limit. Checks: the process
       ends, with one sentence on stderr naming the disk (no traceback); every checkpoint left loads; no temp
       file; only a torn last jsonl line; a resume without the limit repairs the logs and trains on.
fuzz   Hypothesis draws sequences of Pause, Resume, Step(n), Set (valid, out of range, NaN, wrong type, unknown
       key, keys that need a restart or do nothing here), SaveNow, SampleNow, Stop and short waits, sent to a
       live Trainer in a thread (ring8, tiny). Checks: the run ends within a timeout after a final Stop, no
       Failed event, CommandRejected exactly for the refused commands (counted by a model of the trainer),
       Paused/Resumed/ParamChanged as the model says, the final config holds exactly the accepted Set values,
       every announced checkpoint is on disk and loads, Stop(save=True) leaves a checkpoint of the last step.
       A few edge probes (huge integers, a non-text key, a fractional Step) run once each beside it.
window The studio's window (offscreen, a subprocess) trains ring8 in its worker process; at a random moment
       (seeded) either the worker is SIGKILLed (the window must report it, then it closes cleanly) or the window's
       process is (the orphaned worker must notice, save a checkpoint and exit), alternately. Each time a new
       window opens the run folder and continues it; the last one is closed with policy "save". Checks: every
       process under a killed window is gone within 10 s, every reopen trains in the same folder, every
       checkpoint loads, no temp file, every jsonl line parses, metrics steps strictly increase, and no kill lost
       more than one checkpoint interval plus one report interval.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROGRESS = re.compile(r"^\[[#-]+\] (\d+)/")  # the CLI's progress line, "[###-----] 120/5000  ..."
TEMP_PATTERNS = ("*.tmp", "*.part")
BIG = 10_000_000  # --steps for runs that are meant to be killed


@dataclass
class Result:
    name: str
    ok: bool
    line: str
    seconds: float = 0.0
    details: dict = field(default_factory=dict)


# -- run folder checks ------------------------------------------------------------------------------------

def read_jsonl(path: Path) -> tuple[list[dict], list[int]]:
    """(rows that parse as JSON objects with an integer step, 1-based numbers of the lines that do not)."""
    rows, torn = [], []
    if not path.is_file():
        return rows, torn
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            torn.append(number)
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int):
            rows.append(row)
        else:
            torn.append(number)
    return rows, torn


def last_metrics_step(run: Path) -> int | None:
    rows, _ = read_jsonl(run / "metrics.jsonl")
    return rows[-1]["step"] if rows else None


def checkpoints(run: Path) -> list[Path]:
    from engine.checkpoint import checkpoint_step
    return sorted((run / "checkpoints").glob("step_*.pt"), key=checkpoint_step)


def temp_files(run: Path) -> list[Path]:
    return sorted(p for pattern in TEMP_PATTERNS for p in run.rglob(pattern))


def inspect_run(run: Path, report_every: int | None = None) -> dict:
    """Everything the campaigns check about a run folder's files."""
    from PIL import Image
    from engine.checkpoint import CheckpointError, checkpoint_step, load_checkpoint

    found = {"checkpoints": 0, "bad_checkpoints": 0, "corrupt": [], "temps": [str(p.relative_to(run)) for p in temp_files(run)],
             "torn": {}, "rows": 0, "duplicates": [], "backwards": [], "gaps": []}
    for path in checkpoints(run):
        found["checkpoints"] += 1
        try:
            state = load_checkpoint(path)
            if checkpoint_step(path) != state["step"]:
                found["corrupt"].append(f"{path.name}: holds step {state['step']}")
                found["bad_checkpoints"] += 1
        except CheckpointError as exc:
            found["corrupt"].append(f"{path.name}: {exc}")
            found["bad_checkpoints"] += 1
    for png in sorted((run / "samples").glob("*.png")):
        try:
            with Image.open(png) as image:
                image.verify()
        except Exception as exc:  # noqa: BLE001 - any failure to read is a corrupt file
            found["corrupt"].append(f"{png.name}: {type(exc).__name__}: {exc}")
    for name in ("metrics.jsonl", "changes.jsonl"):
        rows, torn = read_jsonl(run / name)
        if torn:
            found["torn"][name] = torn
        if name == "metrics.jsonl":
            steps = [row["step"] for row in rows if row.get("group", "train") == "train"]
            found["rows"] = len(steps)
            seen = set()
            for before, after in zip(steps, steps[1:]):
                if after <= before:
                    found["backwards"].append((before, after))
                elif report_every and after - before != report_every:
                    found["gaps"].append((before, after))
            found["duplicates"] = sorted({s for s in steps if s in seen or seen.add(s)})
    return found


def child_env(workdir: Path) -> dict:
    env = dict(os.environ)
    env.setdefault("GAN_STUDIO_HOME", str(workdir / "home"))
    env.setdefault("GAN_STUDIO_CACHE", str(workdir / "cache"))
    env["OMP_NUM_THREADS"] = "1"  # a tiny MLP: more threads only fight over a shared machine's cores
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def train_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "engine.cli", "train", *args, "--device", "cpu"]


def sets(**values) -> list[str]:
    out = []
    for key, value in values.items():
        out += ["--set", f"{key}={value}"]
    return out


class Child:
    """A `gan-studio train` subprocess whose stderr is read on a thread; `progress` is set at its first
    progress line."""

    def __init__(self, argv: list[str], env: dict):
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, errors="replace")
        self.lines: list[str] = []
        self.progress = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))
            if PROGRESS.match(line):
                self.progress.set()

    def tail(self, n: int = 6) -> str:
        self.reader.join(timeout=5)
        return " | ".join(self.lines[-n:])

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.reader.join(timeout=5)


@contextlib.contextmanager
def workspace(workdir: Path | None, prefix: str, keep: bool):
    """A folder for a campaign: the caller's (kept), or a temp one removed afterwards unless keep is set or the
    campaign failed (the finally sees `state['failed']`)."""
    if workdir is not None:
        Path(workdir).mkdir(parents=True, exist_ok=True)
        yield Path(workdir), {}
        return
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    state = {"failed": False}
    try:
        yield folder, state
    finally:
        if not keep and not state["failed"]:
            shutil.rmtree(folder, ignore_errors=True)


def describe(found: dict) -> list[str]:
    """Problems in inspect_run's findings, as short phrases."""
    problems = []
    if found["corrupt"]:
        problems.append(f"corrupt files: {'; '.join(found['corrupt'][:3])}")
    if found["temps"]:
        problems.append(f"temp files left: {', '.join(found['temps'][:3])}")
    if found["torn"]:
        problems.append(f"unparsable jsonl lines: {found['torn']}")
    if found["duplicates"]:
        problems.append(f"duplicate metrics steps: {found['duplicates'][:5]}")
    if found["backwards"]:
        problems.append(f"metrics steps going back: {found['backwards'][:3]}")
    if found["gaps"]:
        problems.append(f"metrics steps missing between: {found['gaps'][:3]}")
    return problems


# -- 1. kill -9 and resume --------------------------------------------------------------------------------

def kill_campaign(kills: int = 50, seed: int = 0, interval: int = 20, report_every: int = 5,
                  workdir: Path | None = None, keep: bool = False, progress_timeout: float = 120.0,
                  log=None) -> Result:
    from engine.checkpoint import CheckpointError, load_checkpoint

    start = time.perf_counter()
    rng = random.Random(seed)
    problems: list[str] = []
    lost: list[int] = []
    kills_done = resumes = temps_after_kill = torn_after_kill = 0
    with workspace(workdir, "gan-faults-kill-", keep) as (folder, state):
        run = folder / "run"
        env = child_env(folder)
        child = Child(train_argv("ring8", "--steps", str(BIG), "--out", str(run),
                                 *sets(checkpoint_every=interval, report_every=report_every,
                                       sample_every=interval, metrics_every=0)), env)
        for i in range(kills):
            if not child.progress.wait(progress_timeout) or child.proc.poll() is not None:
                problems.append(f"run {i} never printed progress or ended by itself (rc {child.proc.poll()}): "
                                f"{child.tail()}")
                child.kill()
                break
            time.sleep(rng.uniform(0.3, 2.0))
            if child.proc.poll() is not None:
                problems.append(f"run {i} ended by itself (rc {child.proc.returncode}) before the kill: "
                                f"{child.tail()}")
                break
            child.kill()
            kills_done += 1
            reached = last_metrics_step(run)
            temps_after_kill += bool(temp_files(run))
            torn_after_kill += sum(len(read_jsonl(run / n)[1]) for n in ("metrics.jsonl", "changes.jsonl"))
            found = checkpoints(run)
            if not found:
                problems.append(f"kill {i + 1}: no checkpoint to resume from")
                break
            newest = found[-1]
            try:
                resumed_from = load_checkpoint(newest)["step"]
            except CheckpointError as exc:
                problems.append(f"kill {i + 1}: the newest checkpoint does not load: {exc}")
                break
            lost.append(max(0, (reached or 0) - resumed_from))
            if log:
                log(f"kill {i + 1}: reached {reached}, resume from {resumed_from} (lost {lost[-1]})")
            last = i == kills - 1
            steps = resumed_from + 3 * interval if last else BIG  # the last resume trains to its end
            child = Child(train_argv("--resume", str(newest), "--steps", str(steps)), env)
            resumes += 1
        if not problems:  # the last resume trains to its end and must finish cleanly
            try:
                rc = child.proc.wait(timeout=300)
            except subprocess.TimeoutExpired:
                rc = None
            if rc != 0:
                problems.append(f"the last resume did not finish cleanly (rc {rc}): {child.tail()}")
        child.kill()
        found = inspect_run(run, report_every)
        problems += describe(found)
        worst = max(lost, default=0)
        bound = interval + report_every
        if worst > bound:
            problems.append(f"a kill lost {worst} steps (more than checkpoint interval {interval} + report "
                            f"interval {report_every}); lost per kill: {lost}")
        state["failed"] = bool(problems)
        where = f" (files kept in {folder})" if (problems or keep) and workdir is None else ""
    ok = not problems
    line = (f"kill -9: {kills_done} kills, {resumes} resumes, max steps lost {worst} (interval {interval}, "
            f"report {report_every}), {len(found['corrupt'])} corrupt files of {found['checkpoints']} checkpoints, "
            f"{len(found['temps'])} temp files (kills left one {temps_after_kill} times, cleaned on resume), "
            f"torn lines after kills {torn_after_kill}, metrics rows {found['rows']} with no duplicate step: "
            + ("OK" if ok else "FAIL: " + "; ".join(problems)) + where)
    return Result("kill", ok, line, time.perf_counter() - start,
                  {"lost": lost, "kills": kills_done, "resumes": resumes, "found": found})


# -- 2. full disk -------------------------------------------------------------------------------------

DISK_WORDS = re.compile(r"disk|space|full|too large|size|run folder", re.IGNORECASE)
CHATTER = re.compile(r"^(Training on |\[[#-]+\] |Finished at step |Stopping|warning: )")


def file_limit(limit: int):
    def preexec():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return preexec


DISK_SCENARIOS = {
    # name: (--set overrides, how the limit is chosen)
    "checkpoint": (dict(checkpoint_every=20, report_every=5, sample_every=20, metrics_every=0), "checkpoint"),
    "log": (dict(checkpoint_every=1_000_000, report_every=1, sample_every=1_000_000, metrics_every=0,
                 hidden_width=8, depth=1, sample_count=16), "log"),
}


def measure_sizes(overrides: dict, folder: Path) -> dict:
    """Sizes of a run's files for these settings: the step-0 checkpoint (no optimiser state), a later one,
    the biggest sample PNG and config.toml (trains 1 step in-process)."""
    from engine.loop import Trainer
    from engine.presets import load_preset
    config = load_preset("ring8", [f"{k}={v}" for k, v in {**overrides, "checkpoint_every": 1,
                                                               "sample_every": 1}.items()])
    run = folder / "measure"
    Trainer(config, run_dir=run).run(1)
    ckpt = checkpoints(run)
    return {"first": ckpt[0].stat().st_size, "later": ckpt[-1].stat().st_size,
            "png": max(p.stat().st_size for p in (run / "samples").glob("*.png")),
            "config": (run / "config.toml").stat().st_size}


def disk_run(scenario: str, folder: Path, timeout: float = 120.0) -> dict:
    overrides, how = DISK_SCENARIOS[scenario]
    sizes = measure_sizes(overrides, folder / scenario)
    small = max(sizes["png"], sizes["config"])
    if how == "checkpoint":  # the step-0 checkpoint fits, the first with optimiser state does not
        limit = (sizes["first"] + sizes["later"]) // 2
        assert sizes["first"] < limit < sizes["later"] and small < limit, sizes
    else:  # every checkpoint and picture fits; metrics.jsonl grows into the limit
        limit = max(sizes["later"], small) + 32 * 1024
    run = folder / scenario / "run"
    env = child_env(folder)
    argv = train_argv("ring8", "--steps", "100000", "--out", str(run), *sets(**overrides))
    t0 = time.perf_counter()
    try:
        done = subprocess.run(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              errors="replace", timeout=timeout, preexec_fn=file_limit(limit))
        rc, err = done.returncode, done.stderr
    except subprocess.TimeoutExpired as exc:
        rc, err = None, (exc.stderr or b"").decode(errors="replace") if isinstance(exc.stderr, bytes) else (
            exc.stderr or "")
    seconds = time.perf_counter() - t0
    message = [line for line in err.splitlines() if line.strip() and not CHATTER.match(line)]
    out = {"scenario": scenario, "limit": limit, "sizes": sizes, "rc": rc, "seconds": seconds,
           "stderr": err, "message": message, "problems": []}
    problems = out["problems"]
    if rc is None:
        problems.append(f"{scenario}: the run did not end within {timeout:.0f} s (hang)")
    elif rc == 0:
        problems.append(f"{scenario}: the run ended with status 0, as if the refused write had not happened")
    if any("Traceback" in line for line in message):
        problems.append(f"{scenario}: stderr holds a traceback after the message")
    first = message[0] if message else ""
    if not first:
        problems.append(f"{scenario}: nothing on stderr says why the run ended")
    elif not DISK_WORDS.search(first):
        problems.append(f"{scenario}: the message does not name the disk, space, size or run folder: {first!r}")
    found = inspect_run(run)
    out["found_before"] = found
    if found["corrupt"]:
        problems.append(f"{scenario}: corrupt files: {found['corrupt'][:3]}")
    if found["temps"]:
        problems.append(f"{scenario}: temp files left: {found['temps'][:3]}")
    rows_total = {name: len(read_jsonl(run / name)[0]) + len(read_jsonl(run / name)[1])
                  for name in ("metrics.jsonl", "changes.jsonl")}
    for name, torn in found["torn"].items():
        if torn != [rows_total[name]]:  # only the last line may be torn (the write the disk refused)
            problems.append(f"{scenario}: {name} has unparsable lines {torn} that are not its last line")
    out["torn"] = sum(len(t) for t in found["torn"].values())
    # Free the space (no limit) and resume: the logs are repaired, training goes on.
    newest = checkpoints(run)
    if not newest:
        problems.append(f"{scenario}: no checkpoint left to resume from")
        return out
    from engine.checkpoint import load_checkpoint
    step = load_checkpoint(newest[-1])["step"]
    again = subprocess.run(train_argv("--resume", str(newest[-1]), "--steps", str(step + 10)), cwd=ROOT,
                           env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace",
                           timeout=timeout)
    after = inspect_run(run)
    out["resumed"] = again.returncode == 0
    if again.returncode != 0:
        problems.append(f"{scenario}: resuming after the disk error failed (rc {again.returncode}): "
                        f"{again.stderr.strip().splitlines()[-1:]}")
    problems += [f"{scenario} after resume: {p}" for p in describe(after)]
    return out


def disk_campaign(runs: int = 2, workdir: Path | None = None, keep: bool = False) -> Result:
    start = time.perf_counter()
    names = [list(DISK_SCENARIOS)[i % len(DISK_SCENARIOS)] for i in range(runs)]
    outs = []
    with workspace(workdir, "gan-faults-disk-", keep) as (folder, state):
        for i, name in enumerate(names):
            outs.append(disk_run(name, folder / f"{i}"))
        problems = [p for out in outs for p in out["problems"]]
        state["failed"] = bool(problems)
        where = f" (files kept in {folder})" if (problems or keep) and workdir is None else ""
    parts = []
    for out in outs:
        said = out["message"][0] if out["message"] else "(nothing)"
        extra = f" + {len(out['message']) - 1} more lines" if len(out["message"]) > 1 else ""
        rc = "hang" if out["rc"] is None else f"rc {out['rc']}"
        parts.append(f"{out['scenario']} (limit {out['limit'] // 1024} KiB): ended in {out['seconds']:.1f} s, "
                     f"{rc}, stderr {said!r}{extra}, checkpoints loading "
                     f"{out['found_before']['checkpoints'] - out['found_before']['bad_checkpoints']}"
                     f"/{out['found_before']['checkpoints']}, {len(out['found_before']['temps'])} temp files, "
                     f"{out['torn']} torn line(s), resume after freeing space "
                     f"{'OK' if out.get('resumed') else 'failed'}")
    ok = not problems
    line = f"full disk: {len(outs)} runs: " + "; ".join(parts) + ": " + (
        "OK" if ok else "FAIL: " + "; ".join(problems)) + where
    return Result("disk", ok, line, time.perf_counter() - start, {"runs": outs})


# -- 3. command fuzzing -------------------------------------------------------------------------------

FUZZ_SETTINGS = ["checkpoint_every=1000000", "report_every=5", "sample_every=1000000", "metrics_every=0",
                 "batch_size=32", "sample_count=16", "hidden_width=16", "depth=1", "train.device='cpu'"]


@dataclass(frozen=True)
class Wait:
    """Not a command: the fuzzer sleeps this long before the next one, so steps run in between."""
    ms: int


@dataclass(frozen=True)
class SetCase:
    """A Set command and what the trainer must do with it: accept it (value as coerced) or reject it."""
    name: object
    value: object
    key: str | None  # the dotted key it changes when accepted
    accept: bool
    expected: object = None
    kind: str = ""

    def __repr__(self):
        return f"Set({self.name!r}, {self.value!r}){'' if self.accept else ' [refuse: ' + self.kind + ']'}"


LIVE_VALID = {  # ring8's live keys and values that are valid and keep training finite
    "optim.lr_g": ("float", (1e-5, 5e-3)),
    "optim.lr_d": ("float", (1e-5, 5e-3)),
    "optim.betas_g": ("betas", (0.0, 0.99)),
    "optim.betas_d": ("betas", (0.0, 0.99)),
    "optim.weight_decay_d": ("float", (0.0, 0.1)),
    "train.discriminator_steps": ("int", (1, 3)),
    "tricks.label_smoothing": ("float", (0.0, 0.5)),
    "tricks.instance_noise": ("float", (0.0, 0.5)),
    "tricks.r1_weight": ("float", (0.01, 1.0)),  # at 0, r1_every does nothing and a Set of it is refused
    "tricks.r1_every": ("int", (1, 16)),
}
OUT_OF_RANGE = {
    "optim.lr_g": [0.0, -1e-3, 1.0000001, 2.0, 1e9, 2],
    "optim.lr_d": [0.0, -1e-3, 1.5, 1e300, -1],
    "optim.betas_g": [[1.0, 0.5], [0.5, 1.5], [-0.1, 0.9]],
    "optim.betas_d": [[0.99999, 0.5], [0.5, -1e-9]],
    "optim.weight_decay_d": [-0.1, 1.5, -1],
    "train.discriminator_steps": [0, -1, 101, 10 ** 6],
    "tricks.label_smoothing": [-0.1, 0.51, 1.0, 1],
    "tricks.instance_noise": [-1e-9, -1.0, -3],
    "tricks.r1_weight": [-1e-9, -0.5, -2],
    "tricks.r1_every": [0, -1, 65, 10 ** 6],
}
NOT_FINITE = [float("nan"), float("inf"), float("-inf"), "nan", "inf", "-inf"]
WRONG_SCALAR = [None, "fast", "", True, False, [0.1], [], {"v": 1}, b"0.1", complex(1, 0), (0.1,), "0.1.2"]
WRONG_INT = [1.5, "2.5", 2.0000001]
WRONG_BETAS = [[0.5], [0.5, 0.9, 0.99], [float("nan"), 0.9], [0.5, float("inf")], [0.5, "x"], [True, 0.9],
               "0.5", 0.5, None, [[0.5], 0.9], {"a": 0.5}]
UNKNOWN_NAMES = ["lr", "optim.lr", "foo.bar", "", ".", "optim.", ".lr_d", "LR_D", "lr_d ", "train.lr_d.x",
                 "optim.lr_d.extra", "algorithm", "name", "nosection.key", "k.k", "train..steps"]
RESTART = [("batch_size", 32), ("data.batch_size", 64), ("train.seed", 1), ("seed", 3), ("noise_dim", 4),
           ("optim.optimizer_g", "sgd"), ("train.steps", 10), ("ema_decay", 0.9), ("data.dataset", "grid25"),
           ("checkpoint_every", 5), ("report_every", 2), ("hidden_width", 8), ("loss.name", "hinge"),
           ("train.on_nan", "stop"), ("train.device", "cpu")]


def set_strategies(config):
    """Hypothesis strategies of SetCase for this config (a tiny ring8 GAN)."""
    from hypothesis import strategies as st
    from engine.config import ConfigError, aliases, live_keys, resolve_key

    live = config.live_keys()
    if sorted(live) != sorted(LIVE_VALID):
        raise AssertionError(f"ring8's live keys changed: {live}; update LIVE_VALID in bench/faults.py")

    def names_for(key):
        short = next((a for a, k in aliases().items() if k == key), None)
        bare = key.split(".")[1]
        out = {key} | ({short} if short else set())
        with contextlib.suppress(ConfigError):
            if resolve_key(bare) == key:
                out.add(bare)
        return sorted(out)

    def resolves_live(name):
        try:
            return resolve_key(name) in live
        except ConfigError:
            return False

    valid = []
    for key, (kind, (lo, hi)) in LIVE_VALID.items():
        names = st.sampled_from(names_for(key))
        if kind == "float":
            values = st.one_of(st.floats(lo, hi), st.sampled_from([lo, hi]))
            text = st.floats(lo, hi).map(repr)  # the command line's form: "0.001", "1e-05"
            valid.append(st.builds(lambda n, v, key=key: SetCase(n, v, key, True, float(v)), names, values))
            valid.append(st.builds(lambda n, t, key=key: SetCase(n, t, key, True, float(t)), names, text))
        elif kind == "int":
            values = st.one_of(st.integers(lo, hi), st.integers(lo, hi).map(float), st.integers(lo, hi).map(str))
            valid.append(st.builds(lambda n, v, key=key: SetCase(n, v, key, True, int(float(v))), names, values))
        else:
            pair = st.one_of(st.lists(st.floats(lo, hi), min_size=2, max_size=2),
                             st.tuples(st.floats(lo, hi), st.floats(lo, hi)),
                             st.lists(st.integers(0, 0), min_size=2, max_size=2))
            valid.append(st.builds(lambda n, v, key=key: SetCase(n, v, key, True, [float(x) for x in v]),
                                   names, pair))

    bad = []
    for key, (kind, _) in LIVE_VALID.items():
        names = st.sampled_from(names_for(key))
        wrong = WRONG_BETAS if kind == "betas" else WRONG_SCALAR + NOT_FINITE + (WRONG_INT if kind == "int" else [])
        bad.append(st.builds(lambda n, v, key=key: SetCase(n, v, key, False, kind="out of range"), names,
                             st.sampled_from(OUT_OF_RANGE[key])))
        bad.append(st.builds(lambda n, v, key=key: SetCase(n, v, key, False, kind="bad value"), names,
                             st.sampled_from(wrong)))
    other_family = [k for k in live_keys() if k not in live]  # live elsewhere, does nothing here (gp_weight, ...)
    if other_family:
        bad.append(st.builds(lambda n, v: SetCase(n, v, None, False, kind="does nothing here"),
                             st.sampled_from(other_family + [a for a, k in aliases().items() if k in other_family]),
                             st.sampled_from([0.5, 1.0, 0.01])))
    bad.append(st.builds(lambda nv: SetCase(nv[0], nv[1], None, False, kind="needs a restart"),
                         st.sampled_from(RESTART)))
    unknown = st.one_of(st.sampled_from(UNKNOWN_NAMES), st.text(max_size=12).filter(lambda s: not resolves_live(s)))
    bad.append(st.builds(lambda n, v: SetCase(n, v, None, False, kind="unknown key"), unknown,
                         st.sampled_from([1e-3, 1, "x", None])))
    return st.one_of(*valid), st.one_of(*bad)


def command_strategy(config):
    from hypothesis import strategies as st
    from engine import commands as cmd

    valid_set, bad_set = set_strategies(config)
    table = [  # (weight, strategy): a Stop ends the sequence early, so it comes rarely
        (3, st.builds(Wait, st.integers(0, 15))),
        (2, st.just(cmd.Pause())), (2, st.just(cmd.Resume())),
        (3, st.builds(cmd.Step, st.one_of(st.sampled_from([0, -1, 1, 3, -5]), st.integers(-3, 6)))),
        (4, valid_set), (4, bad_set),
        (1, st.just(cmd.SaveNow())), (1, st.just(cmd.SampleNow())),
        (0.3, st.builds(cmd.Stop, st.booleans())),
    ]
    slots = [strategy for weight, strategy in table for _ in range(max(1, round(weight * 10)))]
    return st.integers(0, len(slots) - 1).flatmap(lambda i: slots[i])


class Model:
    """What the trainer must do with a sequence of commands, whatever the timing: it drains the queue in order
    between steps, so pause state, refusals and the config follow from the order alone."""

    def __init__(self, config):
        self.config = config.to_dict()
        self.paused = False
        self.rejected = self.pauses = self.resumes = self.changes = self.saves = self.samples = 0
        self.accepted_sets = self.steps_accepted = 0
        self.stop: object = None

    def apply(self, command) -> None:
        from engine import commands as cmd
        if isinstance(command, cmd.Pause):
            self.pauses += not self.paused
            self.paused = True
        elif isinstance(command, cmd.Resume):
            self.resumes += self.paused
            self.paused = False
        elif isinstance(command, cmd.Step):
            if not self.paused or command.n < 1:
                self.rejected += 1
            else:
                self.steps_accepted += 1
        elif isinstance(command, SetCase):
            if not command.accept:
                self.rejected += 1
                return
            self.accepted_sets += 1
            section, name = command.key.split(".")
            if self.config[section][name] != command.expected:
                self.changes += 1
                self.config[section][name] = command.expected
        elif isinstance(command, cmd.SaveNow):
            self.saves += 1
        elif isinstance(command, cmd.SampleNow):
            self.samples += 1
        elif isinstance(command, cmd.Stop):
            self.stop = command


class FuzzStats:
    def __init__(self):
        self.sequences = self.commands = self.rejected = self.sets = self.saves = self.steps = 0
        self.longest = 0.0
        self.deadlocks = 0  # after the first, shrinking waits less for each hung trainer


def tiny_config():
    from engine.presets import load_preset
    return load_preset("ring8", FUZZ_SETTINGS)


def start_trainer(config, run_dir: Path, dataset=None):
    """A Trainer running in a daemon thread; returns (trainer, events, thread, outcome, checks)."""
    from engine import events as ev
    from engine.checkpoint import CheckpointError, load_checkpoint
    from engine.loop import Trainer
    sys.path.insert(0, str(ROOT / "tests"))
    from helpers import Recorder

    events = Recorder()
    announced: list[str] = []  # problems with checkpoints, seen when they are announced

    def emit(event):
        if isinstance(event, ev.Checkpointed):
            try:
                if load_checkpoint(event.path)["step"] != event.step:
                    announced.append(f"{event.path.name} holds another step than announced")
            except CheckpointError as exc:
                announced.append(f"announced checkpoint does not load: {exc}")
        events(event)

    trainer = Trainer(config, run_dir=run_dir, emit=emit, dataset=dataset)
    outcome = {}

    def work():
        try:
            outcome["reason"] = trainer.run(10 ** 9)
        except BaseException as exc:  # noqa: BLE001 - run() must never raise; record it if it does
            outcome["raised"] = repr(exc)

    thread = threading.Thread(target=work, daemon=True, name="fuzzed-trainer")
    thread.start()
    return trainer, events, thread, outcome, announced


def run_sequence(commands: list, config, folder: Path, dataset, stats: FuzzStats, timeout: float = 30.0) -> None:
    """Send one sequence (then a final Stop) to a fresh trainer and check every property; raises AssertionError."""
    from engine import commands as cmd
    from engine import events as ev

    t0 = time.perf_counter()
    run_dir = Path(tempfile.mkdtemp(prefix="seq-", dir=folder))
    trainer, events, thread, outcome, announced = start_trainer(config, run_dir, dataset)
    model = Model(config)
    for command in commands:
        if isinstance(command, Wait):
            time.sleep(command.ms / 1000)
            continue
        if model.stop is None:
            model.apply(command)
        stats.commands += 1
        trainer.commands.put(cmd.Set(command.name, command.value) if isinstance(command, SetCase) else command)
    if model.stop is None:
        model.apply(cmd.Stop(save=True))
    trainer.commands.put(cmd.Stop(save=True))
    thread.join(timeout if not stats.deadlocks else 5.0)
    stats.deadlocks += thread.is_alive()
    stats.longest = max(stats.longest, time.perf_counter() - t0)
    stats.sequences += 1
    stats.rejected += model.rejected
    stats.sets += model.accepted_sets
    stats.saves += model.saves
    stats.steps += model.steps_accepted
    where = f"commands {commands!r}"
    assert not thread.is_alive(), f"deadlock: the trainer did not end within {timeout:.0f} s of a Stop; {where}"
    failed = events.of(ev.Failed)
    assert "raised" not in outcome, f"run() raised {outcome['raised']}; {where}"
    assert not failed, f"Failed: {failed[0].message}\n{failed[0].traceback}; {where}"
    assert outcome.get("reason") == "stopped", f"run() returned {outcome.get('reason')!r}; {where}"
    rejected = events.of(ev.CommandRejected)
    assert len(rejected) == model.rejected, (
        f"{len(rejected)} CommandRejected for {model.rejected} refused commands "
        f"({[r.why for r in rejected]}); {where}")
    assert len(events.of(ev.Paused)) == model.pauses, f"{len(events.of(ev.Paused))} Paused, expected {model.pauses}; {where}"
    assert len(events.of(ev.Resumed)) == model.resumes, f"Resumed count; {where}"
    changed = events.of(ev.ParamChanged)
    assert len(changed) == model.changes, f"{len(changed)} ParamChanged, expected {model.changes}; {where}"
    assert trainer.config.to_dict() == model.config, (
        f"final config differs from the accepted Set values: "
        f"{ {s: {k: v for k, v in sec.items() if model.config[s].get(k) != v} for s, sec in trainer.config.to_dict().items() if isinstance(sec, dict)} }; {where}")
    logged, torn = read_jsonl(run_dir / "changes.jsonl")
    assert not torn and len(logged) == model.changes, f"changes.jsonl: {len(logged)} rows, torn {torn}; {where}"
    assert not announced, f"{announced[0]}; {where}"
    saved = events.of(ev.Checkpointed)
    final_save = 1 if model.stop.save else 0
    assert 1 + model.saves <= len(saved) <= 1 + model.saves + final_save, (
        f"{len(saved)} checkpoints for {model.saves} SaveNow (+1 at the start, +1 at most at a saving Stop); {where}")
    finished = events.of(ev.Finished)
    assert len(finished) == 1, f"{len(finished)} Finished events; {where}"
    if model.stop.save:
        assert saved[-1].step == finished[0].step and saved[-1].path.is_file(), (
            f"Stop(save=True) at step {finished[0].step} left no checkpoint of that step; {where}")
    assert len(events.of(ev.Samples)) >= 1 + model.samples, f"fewer Samples than SampleNow; {where}"
    metrics, torn = read_jsonl(run_dir / "metrics.jsonl")
    steps = [row["step"] for row in metrics]
    assert not torn and steps == sorted(set(steps)), f"metrics.jsonl steps {steps}, torn {torn}; {where}"
    shutil.rmtree(run_dir, ignore_errors=True)


HUGE = 10 ** 400  # an integer no float holds: TOML and the form's integer fields can both give one
PROBES = [
    # (command, must): must=True is a value a person can type (the command line, a preset file, the form);
    # must=False is a malformed command only a buggy caller builds: reported, not failing the campaign.
    (("set", "lr_d", HUGE), True),
    (("set", "betas_g", [HUGE, 0.5]), True),
    (("step", 2.5), True),
    (("step", float("nan")), True),
    (("set", None, 1e-3), False),
    (("set", 3, 1e-3), False),
    (("step", "3"), False),
]


def shown(probe) -> str:
    def text(value):
        return repr(value).replace(str(HUGE), "10**400")
    kind, *args = probe
    return f"{'Set' if kind == 'set' else 'Step'}({', '.join(text(a) for a in args)})"


def probe_edges(config, folder: Path, dataset) -> tuple[list[str], list[str]]:
    """Inputs outside the fuzzer's alphabet, each once on a fresh trainer: a Set must be answered with one
    CommandRejected; a Step on a paused run must be refused or run at most its steps and stay paused; neither
    may fail the run. Returns (problems, notes): the findings for must-probes and for malformed ones."""
    from engine import commands as cmd
    from engine import events as ev

    problems, notes = [], []
    for probe, must in PROBES:
        found = []
        run_dir = Path(tempfile.mkdtemp(prefix="probe-", dir=folder))
        trainer, events, thread, outcome, _ = start_trainer(config, run_dir, dataset)
        ran = 0
        if probe[0] == "set":
            trainer.commands.put(cmd.Set(probe[1], probe[2]))
        else:
            trainer.commands.put(cmd.Pause())
            events.wait_for(lambda e: isinstance(e, ev.Paused), 60)
            at = trainer.step
            trainer.commands.put(cmd.Step(probe[1]))
            time.sleep(1.0)
            ran = trainer.step - at
        trainer.commands.put(cmd.Stop(save=False))
        thread.join(60)
        failed = events.of(ev.Failed)
        rejected = events.of(ev.CommandRejected)
        if thread.is_alive():
            found.append(f"{shown(probe)}: the trainer hangs")
        elif failed:
            found.append(f"{shown(probe)} fails the run ({failed[0].message})")
        elif probe[0] == "set" and len(rejected) != 1:
            found.append(f"{shown(probe)} is answered by {len(rejected)} CommandRejected, not 1")
        elif probe[0] == "step" and not rejected and ran > 3:
            found.append(f"{shown(probe)} on a paused run is accepted and trains on while paused "
                         f"({ran} steps in 1 s)")
        (problems if must else notes).extend(found)
        shutil.rmtree(run_dir, ignore_errors=True)
    return problems, notes


def fuzz_campaign(sequences: int = 1000, seed: int = 0, max_commands: int = 40, probes: bool = True) -> Result:
    import torch
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis import strategies as st
    from hypothesis.reporting import with_reporter
    from engine import algorithms

    start = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    stats = FuzzStats()
    problems: list[str] = []
    notes: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="gan-faults-fuzz-"))
    try:
        config = tiny_config()
        dataset = algorithms.get(config.algorithm).make_data(config)
        one = command_strategy(config)
        commands = st.lists(st.lists(one, max_size=max_commands // 4), max_size=4).map(  # longer than one list
            lambda runs: [command for run in runs for command in run])

        @hypothesis_seed(seed)
        @settings(max_examples=sequences, deadline=None, database=None, print_blob=False, report_multiple_bugs=False,
                  suppress_health_check=list(HealthCheck))
        @given(commands)
        def check(sequence):
            run_sequence(sequence, config, folder, dataset, stats)

        try:
            with with_reporter(lambda text: None):  # the failing sequence is in the AssertionError's text
                check()
        except Exception as exc:  # noqa: BLE001 - an AssertionError from run_sequence, or hypothesis' own
            text = [line for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
            problems.append(" | ".join(line[:1500] for line in text[:4]))
        if probes:
            edge, notes = probe_edges(config, folder, dataset)
            problems += [f"edge probe: {p}" for p in edge]
    finally:
        torch.set_num_threads(threads)
        shutil.rmtree(folder, ignore_errors=True)
    ok = not problems
    line = (f"command fuzzing: {stats.sequences} sequences run ({sequences} asked), {stats.commands} commands "
            f"({stats.rejected} to refuse, {stats.sets} accepted Sets, {stats.saves} SaveNow, {stats.steps} accepted "
            f"Step(n)), slowest sequence {stats.longest:.2f} s, {len(PROBES) if probes else 0} edge probes"
            + (f" (notes, not failing: {'; '.join(notes)})" if notes else "")
            + (": no deadlock, no Failed event, every refusal answered, config as accepted: OK" if ok
               else ": FAIL: " + "; ".join(problems)))
    return Result("fuzz", ok, line, time.perf_counter() - start, {"problems": problems})


# -- 4. kill the worker or the window, reopen and continue -------------------------------------------------

WINDOW_DRIVER = r'''"""One studio window (offscreen) for bench/faults.py's window campaign: a new ring8 run, or the run folder in
argv[2] opened and continued. Prints RUNNING <run folder> <worker pid> <step> once metrics arrive, FAILED
<message> when the window reports the worker gone (then closes itself), CLOSED at the end; the line `close`
on stdin closes the window (close policy "save")."""
import sys
import threading
from pathlib import Path


def main():
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication
    app = QApplication(sys.argv[:1])
    from engine.config import resolve_key
    from studio.window import MainWindow

    window = MainWindow(QSettings(sys.argv[1], QSettings.IniFormat))
    window.close_policy = "save"
    if sys.argv[2]:
        if not window.open_run(Path(sys.argv[2])):
            print("ERROR open_run refused " + sys.argv[2], flush=True)
            sys.exit(3)
    else:
        window.select_preset("ring8")
        for key, value in (("train.steps", int(sys.argv[3])), ("train.checkpoint_every", int(sys.argv[4])),
                           ("train.sample_every", int(sys.argv[4])), ("train.report_every", int(sys.argv[5])),
                           ("train.metrics_every", 0)):
            window.config.set(resolve_key(key), value)
    closing = threading.Event()
    state = {"announced": False, "metrics": False, "closed": False}

    def read_stdin():
        for line in sys.stdin:
            if line.strip() == "close":
                closing.set()

    def close():
        if not state["closed"]:
            state["closed"] = True
            window.close()
            app.quit()

    def poll():
        bridge = window.bridge
        if closing.is_set():
            close()
        elif not state["announced"] and state["metrics"] and bridge._process is not None:
            state["announced"] = True
            print(f"RUNNING {window.run_dir} {bridge._process.pid} {window.step}", flush=True)

    def failed(event):
        print("FAILED " + event.message.replace("\n", " "), flush=True)
        QTimer.singleShot(200, close)

    window.bridge.metricsArrived.connect(lambda metrics: state.update(metrics=True))
    window.bridge.failed.connect(failed)
    window.bridge.finished.connect(lambda e: print(f"FINISHED {e.step} {e.reason}", flush=True))
    threading.Thread(target=read_stdin, daemon=True).start()
    timer = QTimer()
    timer.timeout.connect(poll)
    timer.start(50)
    window.start_action.trigger()
    app.exec()
    print(f"CLOSED {window.step}", flush=True)


if __name__ == "__main__":  # the bridge spawns its worker, which imports this file again
    main()
'''


def pid_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie waiting for a parent to reap it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc: trust os.kill


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (from /proc; empty where there is none)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def wait_gone(pids, timeout: float, since: float | None = None) -> tuple[list[int], float]:
    """(pids still alive `timeout` s after `since` (perf_counter; default now), seconds the last one took)."""
    t0 = time.perf_counter() if since is None else since
    left = [p for p in pids if pid_alive(p)]
    while left and time.perf_counter() - t0 < timeout:
        time.sleep(0.05)
        left = [p for p in left if pid_alive(p)]
    return left, time.perf_counter() - t0


class WindowDriver:
    """A studio window in a subprocess (WINDOW_DRIVER); its stdout lines are read on a thread."""

    def __init__(self, script: Path, settings: Path, env: dict, log: Path, run: Path | None = None,
                 new_run: tuple = (0, 0, 0)):
        argv = [sys.executable, str(script), str(settings), str(run or ""), *map(str, new_run)]
        self.log = open(log, "a", encoding="utf-8")
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True,
                                     errors="replace")
        self.lines: list[str] = []
        self.running = threading.Event()
        self.failed = threading.Event()
        self.run_dir: Path | None = None
        self.worker: int | None = None
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.lines.append(line)
            if line.startswith("RUNNING "):
                folder, pid, _step = line[len("RUNNING "):].rsplit(" ", 2)
                self.run_dir, self.worker = Path(folder), int(pid)
                self.running.set()
            elif line.startswith("FAILED "):
                self.failed.set()

    def tail(self, n: int = 4) -> str:
        self.reader.join(timeout=5)
        return " | ".join(self.lines[-n:])

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.proc.stdin.write("close\n")
            self.proc.stdin.flush()

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.reader.join(timeout=5)
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        self.log.close()


def wait_until(event: threading.Event, proc: subprocess.Popen, timeout: float) -> bool:
    """Wait for `event`; False at the timeout, or soon after `proc` ends without setting it."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if event.wait(0.1):
            return True
        if proc.poll() is not None:
            return event.wait(1.0)  # its last lines may still be on the way
    return False


def window_campaign(kills: int = 10, seed: int = 0, interval: int = 20, report_every: int = 5,
                    workdir: Path | None = None, keep: bool = False, start_timeout: float = 180.0,
                    log=None) -> Result:
    from engine.checkpoint import CheckpointError, load_checkpoint

    start = time.perf_counter()
    rng = random.Random(seed)
    problems: list[str] = []
    lost: list[int] = []
    exits: list[float] = []  # seconds the killed window's processes took to go
    done = {"worker": 0, "window": 0}
    reopens = orphans = 0
    run: Path | None = None
    found = None
    with workspace(workdir, "gan-faults-window-", keep) as (folder, state):
        env = child_env(folder)
        env["QT_QPA_PLATFORM"] = "offscreen"
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        script = folder / "window_driver.py"
        script.write_text(WINDOW_DRIVER, encoding="utf-8")
        settings, driver_log = folder / "studio.ini", folder / "drivers.log"
        driver = WindowDriver(script, settings, env, driver_log, new_run=(BIG, interval, report_every))
        for i in range(kills + 1):
            if not wait_until(driver.running, driver.proc, start_timeout):
                problems.append(f"window {i} never showed training (rc {driver.proc.poll()}): {driver.tail()}")
                break
            if run is None:
                run = driver.run_dir
            elif driver.run_dir != run:
                problems.append(f"reopen {i} trains in {driver.run_dir}, not in the opened run {run}")
                break
            if i == kills:
                break  # the last window is closed, not killed
            time.sleep(rng.uniform(0.3, 2.0))
            if driver.proc.poll() is not None:
                problems.append(f"window {i} ended by itself (rc {driver.proc.returncode}): {driver.tail()}")
                break
            kind = ("worker", "window")[i % 2]
            family = descendants(driver.proc.pid) or [driver.worker]  # the worker and multiprocessing's helpers
            if kind == "worker":
                os.kill(driver.worker, signal.SIGKILL)
                if not wait_until(driver.failed, driver.proc, 15.0):
                    problems.append(f"kill {i + 1}: the window did not report that its worker ended: {driver.tail()}")
                try:
                    rc = driver.proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    rc = None
                if rc != 0:
                    problems.append(f"kill {i + 1}: the window did not close cleanly after its worker was killed "
                                    f"(rc {rc}): {driver.tail()}")
            killed_at = time.perf_counter()
            if driver.proc.poll() is None:  # kind "window": the orphaned worker must save and exit by itself
                os.kill(driver.proc.pid, signal.SIGKILL)
                driver.proc.wait()
            done[kind] += 1
            left, took = wait_gone(family, 10.0, since=killed_at)
            if kind == "window":
                exits.append(took)
            driver.kill()  # after the wait: its reader sees the end of stdout only once the worker (which shares it) ends
            if left:
                orphans += len(left)
                problems.append(f"kill {i + 1} ({kind}): processes {left} still alive 10 s after the window went")
                for pid in left:
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
            reached = last_metrics_step(run) or 0
            newest = checkpoints(run)
            if not newest:
                problems.append(f"kill {i + 1}: no checkpoint to reopen from")
                break
            try:
                resumed_from = load_checkpoint(newest[-1])["step"]
            except CheckpointError as exc:
                problems.append(f"kill {i + 1}: the newest checkpoint does not load: {exc}")
                break
            lost.append(max(0, reached - resumed_from))
            if log:
                log(f"kill {i + 1} ({kind}): reached {reached}, reopen at {resumed_from} (lost {lost[-1]}), "
                    f"processes gone in {took:.1f} s")
            driver = WindowDriver(script, settings, env, driver_log, run=run)
            reopens += 1
        if not problems:  # the last window closes with policy "save": a checkpoint of its last step, no orphan
            family = descendants(driver.proc.pid)
            driver.close()
            try:
                rc = driver.proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                rc = None
            if rc != 0 or not driver.tail(1).startswith("CLOSED"):
                problems.append(f"the last window did not close cleanly (rc {rc}): {driver.tail()}")
            left, _ = wait_gone(family, 10.0)
            if left:
                orphans += len(left)
                problems.append(f"processes {left} still alive 10 s after the last window closed")
            newest = checkpoints(run)
            if newest and load_checkpoint(newest[-1])["step"] < (last_metrics_step(run) or 0):
                problems.append(f"closing with policy 'save' left no checkpoint of the last reported step "
                                f"({newest[-1].name}, metrics reach {last_metrics_step(run)})")
        driver.kill()
        if run is not None:
            found = inspect_run(run)
            problems += describe(found)
        worst = max(lost, default=0)
        if worst > interval + report_every:
            problems.append(f"a kill lost {worst} steps (more than checkpoint interval {interval} + report "
                            f"interval {report_every}); lost per kill: {lost}")
        state["failed"] = bool(problems)
        where = f" (files kept in {folder})" if (problems or keep) and workdir is None else ""
    ok = not problems
    found = found or {"corrupt": [], "checkpoints": 0, "temps": [], "rows": 0}
    line = (f"window kills: {done['worker'] + done['window']} kills ({done['worker']} worker, {done['window']} "
            f"window), {reopens} reopens, max steps lost {worst} (interval {interval}, report {report_every}), "
            f"orphans left {orphans} (slowest orphan exit {max(exits, default=0):.1f} s), corrupt files "
            f"{len(found['corrupt'])} of {found['checkpoints']} checkpoints, {len(found['temps'])} temp files, "
            f"metrics rows {found['rows']} with no duplicate step: "
            + ("OK" if ok else "FAIL: " + "; ".join(problems)) + where)
    return Result("window", ok, line, time.perf_counter() - start,
                  {"lost": lost, "kills": done, "reopens": reopens, "orphans": orphans, "found": found})


# -- command line -----------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("campaign", choices=("kill", "disk", "fuzz", "window", "all"))
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--interval", type=int, default=20, help="checkpoint_every of the killed run")
    parser.add_argument("--runs", type=int, default=2, help="full-disk runs (checkpoint write, then log append)")
    parser.add_argument("--sequences", type=int, default=1000)
    parser.add_argument("--window-kills", type=int, default=10, help="kills of the window campaign (worker, window)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the run folders (kept anyway on failure)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    chosen = ("kill", "disk", "fuzz", "window") if args.campaign == "all" else (args.campaign,)
    log = (lambda text: print(text, file=sys.stderr, flush=True)) if args.verbose else None
    results = []
    for name in chosen:
        if name == "kill":
            result = kill_campaign(args.kills, args.seed, args.interval, keep=args.keep, log=log)
        elif name == "disk":
            result = disk_campaign(args.runs, keep=args.keep)
        elif name == "window":
            result = window_campaign(args.window_kills, args.seed, args.interval, keep=args.keep, log=log)
        else:
            result = fuzz_campaign(args.sequences, args.seed)
        print(result.line + (f"  [{result.seconds:.0f} s]" if args.campaign == "all" else ""), flush=True)
        results.append(result)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
