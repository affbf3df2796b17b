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


def quick(name, *overrides, fake_dir=None, run_dir=None, **kwargs):
    sets = list(overrides)
    if fake_dir is not None and load_preset(name).data.dataset in ("fashion_mnist", "mnist"):
        sets.append(f"data.path={str(fake_dir)!r}")
    config = load_preset(name, sets)
    needs_fortunes(config)
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
