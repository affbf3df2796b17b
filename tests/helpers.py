import threading

import numpy as np
import pytest
import torch

from engine.device import inputs_to
from engine.presets import load_preset
from engine.loop import Trainer


class Recorder(list):
    """Collects events from any thread; `of(Type)` filters them, `wait_for` blocks until one matches."""

    def __init__(self):
        super().__init__()
        self.condition = threading.Condition()

    def __call__(self, event):
        with self.condition:
            self.append(event)
            self.condition.notify_all()

    def of(self, kind):
        return [e for e in list(self) if isinstance(e, kind)]

    def wait_for(self, predicate, timeout=60.0):
        with self.condition:
            found = self.condition.wait_for(lambda: next((e for e in self if predicate(e)), None), timeout)
        assert found is not None, "the expected event never came"
        return found


def needs_fortunes(config) -> None:
    """Skip, naming the package, when a preset reads the system's fortune cookies and they are not installed."""
    from engine.text.data import FORTUNES
    if config.algorithm == "seqgan" and config.seqgan.source == "text" and not config.seqgan.text_file \
            and not FORTUNES.is_dir():
        pytest.skip("the Debian package 'fortunes' is not installed (apt-get install fortunes)")


def needs_speech(config) -> None:
    """Skip, naming the packages, when a SEGAN preset speaks the fortunes with espeak-ng and either is missing."""
    import shutil
    from engine.text.data import FORTUNES
    if config.algorithm != "segan" or config.segan.source != "synth":
        return
    if shutil.which("espeak-ng") is None:
        pytest.skip("the Debian package 'espeak-ng' is not installed (apt-get install espeak-ng)")
    if not config.segan.text_file and not FORTUNES.is_dir():
        pytest.skip("the Debian package 'fortunes' is not installed (apt-get install fortunes)")


# A SEGAN preset's spoken corpus, cut down so a test synthesises it in a second or two
SMALL_SPEECH = ["segan.utterances=12", "segan.held_clips=4", "segan.batch=8"]


def quick(name, *overrides, fake_dir=None, run_dir=None, **kwargs):
    preset = load_preset(name)
    sets = (SMALL_SPEECH if preset.algorithm == "segan" else []) + list(overrides)
    if fake_dir is not None and preset.data.dataset in ("fashion_mnist", "mnist"):
        sets.append(f"data.path={str(fake_dir)!r}")
    config = load_preset(name, sets)
    needs_fortunes(config)
    needs_speech(config)
    events = Recorder()
    trainer = Trainer(config, run_dir=run_dir, emit=events, **kwargs)
    return trainer, events


def generated(trainer, n=2500, seed=123):
    inputs = trainer.algorithm.random_inputs(n, torch.Generator().manual_seed(seed))
    return trainer.generate(inputs_to(inputs, trainer.device)).float().cpu().numpy()


class LocalServer:
    """An HTTP server on 127.0.0.1 in a thread, for download tests (downloads from the web do not work here);
    a `with` block runs it. Subclasses give the handler."""

    def __init__(self, handler, path: str = "/"):
        import http.server
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def trained_parameters(trainer) -> dict:
    """A copy of the parameters of every network an optimizer trains (optimizers need not be named after their
    networks: LAPGAN's g0, d0, ... each train one level), by network name."""
    optimised = {id(p) for opt in trainer.opts.values() for group in opt.param_groups for p in group["params"]}
    return {name: [p.detach().clone() for p in net.parameters()] for name, net in trainer.nets.items()
            if any(id(p) in optimised for p in net.parameters())}


def unmoved_networks(trainer, before: dict) -> list:
    """The networks (of `before`, from trained_parameters) whose parameters are all exactly as they were."""
    return [name for name, params in before.items()
            if all(torch.equal(old, new.detach()) for old, new in zip(params, trainer.nets[name].parameters()))]


class BarReader(torch.nn.Module):
    """A stand-in classifier that knows the answer on conftest's fake Fashion-MNIST, where class c is a bright
    bar at rows 2c + 4 to 2c + 6: it reads the bar. `relabel` renames its guesses (guess c is reported as
    relabel[c]); `constant` makes it guess that one class for every image. It answers with a class head and an
    InfoGAN Q head alike."""

    def __init__(self, relabel=None, constant=None):
        super().__init__()
        self.relabel = list(range(10)) if relabel is None else list(relabel)
        self.constant = constant
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # so a probe can find its device

    def forward(self, x, labels=None):
        import types
        rows = x[:, 0, :, 4:24].float().mean(2)
        bars = torch.stack([rows[:, 2 * c + 4: 2 * c + 7].mean(1) for c in range(10)], 1)
        guess = bars.argmax(1) if self.constant is None else torch.full((len(x),), self.constant, dtype=torch.long)
        named = torch.tensor(self.relabel, dtype=torch.long)[guess]
        logits = torch.nn.functional.one_hot(named, 10).float() * 5.0
        return types.SimpleNamespace(class_logits=logits, q=logits, logit=logits[:, :1])


def best_matched_accuracy(guesses, labels, k: int) -> float:
    """Accuracy of `guesses` under the best one-to-one renaming of guesses to labels, by dynamic programming
    over the subsets of labels already taken (exact for k up to ~16)."""
    counts = np.zeros((k, k), dtype=np.int64)
    np.add.at(counts, (np.asarray(guesses), np.asarray(labels)), 1)
    best = {0: 0}
    for g in range(k):  # guess g takes one label not yet taken
        nxt = {}
        for taken, score in best.items():
            for lab in range(k):
                if not taken >> lab & 1:
                    key = taken | 1 << lab
                    nxt[key] = max(nxt.get(key, -1), score + int(counts[g, lab]))
        best = nxt
    return max(best.values()) / len(labels)


def open_window(qtbot, settings_file, policy: str | None = "discard"):
    """A studio window shown offscreen with its own settings file; policy answers "close while training"."""
    from PySide6.QtCore import QSettings
    from studio.window import MainWindow
    win = MainWindow(QSettings(str(settings_file), QSettings.IniFormat))
    win.close_policy = policy
    qtbot.addWidget(win)
    win.show()
    return win


def studio_threads() -> list:
    """The studio's own threads still alive (a window must leave none behind)."""
    import threading
    return [t for t in threading.enumerate() if t.name.startswith("gan-studio")]
