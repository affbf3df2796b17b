"""Opening a saved run in the window: read everything first, then switch the window over in one go, so a run
that cannot be read leaves the window as it was."""

from __future__ import annotations

from pathlib import Path

from engine.config import ConfigError
from engine.run_control import judge, read_heartbeat
from studio.runs import SavedRun, read_run


def open_run(window, run_dir: Path) -> bool:
    """Restore a run's settings (its newest checkpoint's), curves, change markers and snapshots; Start continues
    it. Unreadable log lines are skipped and counted in the status bar. False (and nothing changed) if the
    folder cannot be read. A run another process is still writing is followed live (studio.follow)."""
    if window.bridge.running and not window.following.active:
        window.statusBar().showMessage("Stop the run before opening another.", 8000)
        return False
    beat = read_heartbeat(Path(run_dir).parent.parent if Path(run_dir).suffix == ".pt" else run_dir)
    try:
        run = read_run(run_dir, logs=judge(beat) != "running")
    except ConfigError as exc:
        window.show_error(str(exc))
        return False
    except OSError as exc:
        window.show_error(f"{run_dir} could not be read ({exc.strerror or exc}); check the folder and try again.")
        return False
    window.following.release()
    show_run(window, run)
    window.following.opened(run, beat)
    return True


def show_run(window, run: SavedRun) -> None:
    """Switch the window over to a run already read."""
    window.run_dir = run.folder
    window._show_config(run.config)
    window.browser.show_quietly(run.config.name)
    window.curves.clear()
    window.samples.clear()
    window.curves.add_metrics(run.metrics)
    for step, text in run.markers:
        window.curves.add_marker(step, text)
    for step, png in run.snapshots:
        window.samples.add_snapshot(step, png)
    if window.samples.snapshots:
        window.samples.slider.setValue(len(window.samples.snapshots) - 1)
        window.samples._scrubbed(len(window.samples.snapshots) - 1)
    window.resume_from = run.checkpoint
    window.fork_parent = None
    if window.resume_from is not None and window.declaration.steerable:
        window.explorer.load_checkpoint(window.resume_from, run.folder)
        window.explorer_dock.show()
    window.browser.description.setText(f"Opened run {run.folder.name}; press Start to continue it.")
    problem = run.message()
    if problem:
        window.statusBar().showMessage(problem, 20000)
