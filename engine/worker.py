"""Training in a child process: the GUI's bridge starts `run_in_process` with two
multiprocessing queues. Events (plain CPU dataclasses) go out on one, commands come in on the
other; the trainer reads that queue exactly like its own queue.Queue. A separate process keeps
the training loop and the window from competing for one interpreter lock."""

from __future__ import annotations

import multiprocessing
import threading
import traceback

PARENT_CHECK_SECONDS = 1.0


def stop_when_orphaned(commands, stopped: threading.Event) -> None:
    """If the window's process dies (killed, crashed), stop training and save a checkpoint, so an
    orphan never trains on unseen and nothing since the last checkpoint is lost."""
    from engine import commands as cmd
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    while not stopped.wait(PARENT_CHECK_SECONDS):
        if not parent.is_alive():
            commands.put(cmd.Stop(save=True))
            return


class StopWatch:
    """The cancel hook of a download that runs before the trainer reads its queue: true once a Stop has come;
    other commands are kept for the trainer."""

    def __init__(self, commands):
        self.commands = commands
        self.kept: list = []
        self.stopped = False

    def __call__(self) -> bool:
        import queue
        from engine import commands as cmd
        while True:
            try:
                command = self.commands.get_nowait()
            except (queue.Empty, OSError, ValueError):
                break
            if isinstance(command, cmd.Stop):
                self.stopped = True
            else:
                self.kept.append(command)
        return self.stopped


def install_stop_signals(commands) -> None:
    """Ctrl-C in the terminal that started the studio reaches the worker too: the window decides what happens
    (it asks, or saves), so the worker ignores SIGINT. SIGTERM (a logout, `kill`) stops the run with a
    checkpoint instead of dying mid-step."""
    import signal
    from engine import commands as cmd
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, lambda signum, frame: commands.put(cmd.Stop(save=True)))
    except ValueError:  # not the main thread of the process (tests run the worker in a thread)
        pass


def run_in_process(config_dict: dict, run_dir, resume, events, commands) -> None:
    from engine import events as ev
    from engine.config import Config
    from engine.loop import Trainer
    stopped = threading.Event()
    threading.Thread(target=stop_when_orphaned, args=(commands, stopped), daemon=True).start()
    install_stop_signals(commands)
    watch = StopWatch(commands)
    try:
        try:
            trainer = Trainer(Config.from_dict(config_dict), run_dir=run_dir, emit=events.put, resume=resume,
                              interactive=True, cancel=watch)
        except Exception as exc:  # bad data, bad checkpoint: reported, never raised
            if watch.stopped:  # Stop pressed during a download: the download was cancelled
                events.put(ev.Finished(0, "stopped"))
                return
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            events.put(ev.Failed(first, traceback.format_exc()))
            events.put(ev.Finished(0, "failed"))
            return
        for command in watch.kept:  # commands that came while the data loaded go back, in their order
            commands.put(command)
        trainer.commands = commands
        trainer.run()
    finally:
        stopped.set()
        parent = multiprocessing.parent_process()
        if parent is not None and not parent.is_alive():
            events.cancel_join_thread()  # nobody reads the pipe any more: don't wait to flush it
        else:
            events.put(None)  # end of stream
        events.close()
