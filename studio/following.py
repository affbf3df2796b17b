"""The window's side of following a run another process writes (studio.follow): File → Open of a run whose
heartbeat is fresh follows it; Run → Steer this run lets the window's controls send it commands; the status bar
says whose run it follows and at which step; when the run ends (or its heartbeat goes stale) the window gets its
own bridge back and holds the run as an opened one."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QLabel, QToolBar

from engine.run_control import COMMANDS_FILE, judge
from studio.follow import READ_ONLY, FollowBridge

STEER_TIP = ("Send Pause, Step, Stop, Save and live settings to the followed run through its folder "
             "(RUN/commands.jsonl); off, the window only watches")


class Following(QObject):
    """The window's side: open a live run as followed, the Steer toggle, the status-bar note, and handing the
    window its own bridge back when following ends."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.bridge: FollowBridge | None = None
        self.local = window.bridge
        self.steer_action = QAction("Steer this run", window)
        self.steer_action.setCheckable(True)
        self.steer_action.setEnabled(False)
        self.steer_action.setToolTip(STEER_TIP)
        self.steer_action.setStatusTip(STEER_TIP)
        self.steer_action.toggled.connect(self._steer)
        run_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Run")
        run_menu.addSeparator()
        run_menu.addAction(self.steer_action)
        toolbar = window.findChild(QToolBar, "run-toolbar")
        if toolbar is not None:
            toolbar.addAction(self.steer_action)
        self.label = QLabel()
        self.label.hide()
        window.statusBar().addPermanentWidget(self.label)
        window.installEventFilter(self)

    @property
    def active(self) -> bool:
        return self.bridge is not None

    def opened(self, run, beat: dict | None) -> None:
        """After File → Open showed `run`: follow it if its heartbeat is fresh; say so if its writer died."""
        verdict = judge(beat)
        if verdict == "running":
            self._follow(run, beat)
        elif verdict == "died" and not run.message():
            self.window.statusBar().showMessage(
                f"The process that wrote this run (pid {beat.get('pid')} on {beat.get('host')}) stopped at step "
                f"{beat.get('step')} without finishing; Start continues it from its newest checkpoint.", 20000)
        elif verdict == "stale" and not run.message():  # another machine: it may be alive behind a slow sync
            self.window.statusBar().showMessage(
                f"No heartbeat from pid {beat.get('pid')} on {beat.get('host')} since step {beat.get('step')}: it "
                f"stopped, or this folder stopped syncing; press Start only if it no longer runs there, since both "
                f"would write this folder.", 20000)

    def _follow(self, run, beat: dict) -> None:
        window = self.window
        bridge = FollowBridge(run.folder, run.config, beat, self)
        self.local, window.bridge, self.bridge = window.bridge, bridge, bridge
        window._connect_bridge()
        for signal in (bridge.started, bridge.paused, bridge.resumed, bridge.runningChanged):
            signal.connect(self._apply_mode)
        bridge.snapshotsArrived.connect(lambda items: [window.samples.add_snapshot(*item) for item in items])
        bridge.heartbeat.connect(self._show_beat)
        bridge.finished.connect(self._ended)
        self.steer_action.setEnabled(True)
        self.steer_action.setChecked(False)
        window.browser.description.setText(
            f"Following run {run.folder.name}, which pid {beat.get('pid')} on {beat.get('host')} is writing; "
            f"Run → Steer this run sends it commands.")
        self._show_beat(beat)
        bridge.begin()
        self._apply_mode()

    def release(self) -> None:
        """Stop following (the run goes on) and give the window its own bridge back."""
        bridge, self.bridge = self.bridge, None
        if bridge is None:
            return
        bridge.join(10)
        self.window.bridge = self.local
        bridge.deleteLater()
        self.steer_action.setChecked(False)
        self.steer_action.setEnabled(False)
        self.label.hide()
        self.window.form.set_running(False)
        self.window.named_actions["save"].setEnabled(True)
        self.window._update_actions()

    def _steer(self, on: bool) -> None:
        if self.bridge is None:
            return
        self.bridge.steering = on
        self._apply_mode()
        self._show_beat(self.bridge.beat)
        self.window.statusBar().showMessage(
            f"Steering: Pause, Step, Stop, Save and live settings now go to {self.bridge.run_dir / COMMANDS_FILE}."
            if on else "Watching only: the window sends the run nothing.", 8000)

    def _apply_mode(self, *_) -> None:
        """Read-only: every control that would send a command is off. Steering: those of a live run are on."""
        bridge, window = self.bridge, self.window
        if bridge is None:
            return
        steering = bridge.steering and bridge.running
        for name in ("pause", "step", "stop", "save"):
            window.named_actions[name].setEnabled(steering)
        for name in ("start", "fork", "rollback"):
            window.named_actions[name].setEnabled(False)
        controls = window.declaration.controls
        window.form.set_running(True, controls if steering else ())
        if not steering:
            for key in controls:
                if key in window.form.widgets:
                    window.form.widgets[key].setToolTip(READ_ONLY)

    def _show_beat(self, beat: dict) -> None:
        if self.bridge is None:
            return
        mode = "steering" if self.bridge.steering else "read-only"
        paused = ", paused" if beat.get("paused") else ""
        self.label.setText(f"following pid {beat.get('pid')} on {beat.get('host')} at step {beat.get('step')}"
                           f"{paused} ({mode})")
        self.label.show()

    def _ended(self, event) -> None:
        text = self.bridge.end_text if self.bridge is not None else ""
        self.release()
        if text:
            self.window.statusBar().showMessage(text, 30000)

    def eventFilter(self, watched, event) -> bool:
        if watched is self.window and event.type() == QEvent.Close:
            self.release()  # closing the window leaves the followed run going
        return False
