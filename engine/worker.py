"""Training in a child process: the GUI's bridge starts `run_in_process` with two
multiprocessing queues. Events (plain CPU dataclasses) go out on one, commands come in on the
other; the trainer reads that queue exactly like its own queue.Queue. A separate process keeps
the training loop and the window from competing for one interpreter lock."""

from __future__ import annotations

import traceback


def run_in_process(config_dict: dict, run_dir, resume, events, commands) -> None:
    from engine import events as ev
    from engine.config import Config
    from engine.trainer import Trainer
    try:
        try:
            trainer = Trainer(Config.from_dict(config_dict), run_dir=run_dir, emit=events.put, resume=resume)
        except Exception as exc:  # bad data, bad checkpoint: reported, never raised
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            events.put(ev.Failed(first, traceback.format_exc()))
            events.put(ev.Finished(0, "failed"))
            return
        trainer.commands = commands
        trainer.run()
    finally:
        events.put(None)  # end of stream
        events.close()
        events.join_thread()
