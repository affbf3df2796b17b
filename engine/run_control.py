"""Steering a run through its folder, for a trainer nobody holds a queue to (`gan-studio train` on a server).

RUN/commands.jsonl is append-only, one JSON object a line, for example

    {"id": "a1", "command": "set", "name": "lr_d", "value": 0.0001}

with "command" one of pause, resume, step ("n", default 1), set ("name", "value"), save, sample and stop
("save", default true); "id" is anything the writer wants to find its answer by. The trainer reads the lines
appended since it started, complete lines only (a torn last line waits for its end), between steps and at most
every POLL_SECONDS. Each one is answered with one row of RUN/changes.jsonl:
{"step": S, "id": ..., "command": ..., "answer": "accepted"}, or "answer": "rejected" with "why", one sentence.

RUN/live.json is the heartbeat: {"state": "running", "pid", "host", "device", "step", "paused", "time", "every"},
replaced atomically every HEARTBEAT_SECONDS by a thread (so a long step does not look like a dead run), and
marked "state": "finished" with the "reason" when the run ends. A reader tells a run still being written from a
finished one by the state, and from a dead one by a stale time or, on the same host, a process that is gone.
"""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from engine import commands as cmd
from engine import events as ev

COMMANDS_FILE = "commands.jsonl"
HEARTBEAT_FILE = "live.json"
POLL_SECONDS = 0.25
HEARTBEAT_SECONDS = 2.0
STALE_SECONDS = 20.0  # a heartbeat older than this: the run died, or the folder stopped syncing
MAX_READ = 16 << 20  # bytes read from a log in one look

KINDS = {"pause": cmd.Pause, "resume": cmd.Resume, "step": cmd.Step, "set": cmd.Set, "save": cmd.SaveNow,
         "sample": cmd.SampleNow, "stop": cmd.Stop}
NAMES = {kind: name for name, kind in KINDS.items()}


class LineTail:
    """The complete lines appended to a file since the last look. A torn last line is left for a later look;
    a file that shrank (replaced, truncated) is read again from its top."""

    def __init__(self, path: Path, from_end: bool = False):
        self.path = Path(path)
        self.offset = self._complete_size() if from_end else 0

    def _complete_size(self) -> int:
        """The size up to and including the last newline: what counts as already written."""
        try:
            with open(self.path, "rb") as handle:
                size = handle.seek(0, os.SEEK_END)
                handle.seek(max(0, size - 65536))
                tail = handle.read()
        except OSError:
            return 0
        return size - len(tail) + tail.rfind(b"\n") + 1

    def read(self) -> list[str]:
        try:
            size = os.stat(self.path).st_size
        except OSError:
            return []
        if size < self.offset:
            self.offset = 0
        if size == self.offset:
            return []
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read(min(size - self.offset, MAX_READ))
        except OSError:
            return []
        end = data.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        return [line.decode("utf-8", "replace") for line in data[:end].split(b"\n") if line.strip()]


@dataclass(frozen=True)
class FileCommand:
    """One line of the commands file read back: the command, or why it could not be read."""
    id: object
    kind: str
    command: cmd.Command | None
    why: str = ""


def encode(command: cmd.Command, id_=None) -> str:
    """The commands-file line (with its newline) for a command; ValueError for one the file does not carry."""
    kind = NAMES.get(type(command))
    if kind is None:
        raise ValueError(f"{type(command).__name__} cannot be sent through the commands file.")
    return json.dumps({"id": id_, "command": kind, **dataclasses.asdict(command)}) + "\n"


def decode(line: str) -> FileCommand:
    try:
        row = json.loads(line)
    except ValueError:
        return FileCommand(None, "", None, f"The line {line[:60]!r} of {COMMANDS_FILE} is not JSON; write one "
                                           f"object a line, like {{\"command\": \"pause\"}}.")
    if not isinstance(row, dict):
        return FileCommand(None, "", None, f"The line {line[:60]!r} of {COMMANDS_FILE} is not a JSON object; "
                                           f"write one like {{\"command\": \"pause\"}}.")
    id_, kind = row.get("id"), row.get("command")
    if kind not in KINDS:
        return FileCommand(id_, str(kind), None, f"{kind!r} is not a command; the commands are "
                                                 f"{', '.join(KINDS)}.")
    try:
        if kind == "set":
            if not isinstance(row.get("name"), str) or "value" not in row:
                raise ValueError("set needs a setting's name and a value, like "
                                 "{\"command\": \"set\", \"name\": \"lr_d\", \"value\": 0.0001}.")
            return FileCommand(id_, kind, cmd.Set(row["name"], row["value"]))
        if kind == "stop":
            if not isinstance(row.get("save", True), bool):
                raise ValueError(f"stop's save is true or false, not {row['save']!r}.")
            return FileCommand(id_, kind, cmd.Stop(save=row.get("save", True)))
        if kind == "step":
            return FileCommand(id_, kind, cmd.Step(row.get("n", 1)))
        return FileCommand(id_, kind, KINDS[kind]())
    except ValueError as exc:
        return FileCommand(id_, kind, None, str(exc))


class RunControl:
    """A trainer's commands file and heartbeat. attach() puts it in front of the trainer's command queue, so the
    loop reads the file exactly where it drains its queue (between steps; a paused loop waits on the queue for
    POLL_SECONDS at a time and looks at the file in between), and wraps the trainer's emit to see how each
    command was answered and when the run ends."""

    def __init__(self, trainer):
        if trainer.run_dir is None:
            raise ValueError("A run steered through its folder needs a run folder.")
        self.trainer = trainer
        self.folder = Path(trainer.run_dir)
        self.queue = trainer.commands
        self.tail = LineTail(self.folder / COMMANDS_FILE, from_end=True)  # older lines belong to earlier sessions
        self._next_poll = 0.0
        self._read: list[FileCommand] = []  # read from the file, not yet handed to the loop
        self._pending: FileCommand | None = None  # handed to the loop, answered at the next look
        self._rejected: list[str] = []
        self._inner = trainer.emit
        self._state, self._reason = "running", ""
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def attach(cls, trainer) -> "RunControl":
        """Steer `trainer` through RUN/commands.jsonl and keep RUN/live.json; call before trainer.run()."""
        control = cls(trainer)
        trainer.commands = control
        trainer.emit = control._observe
        control.beat()
        control._thread = threading.Thread(target=control._beat_loop, name="gan-studio-heartbeat", daemon=True)
        control._thread.start()
        return control

    # -- the queue the loop drains (training thread) ---------------------------------------------------
    def put(self, command: cmd.Command) -> None:
        self.queue.put(command)  # Ctrl-C and SIGTERM still come this way

    def get_nowait(self) -> cmd.Command:
        return self.get(block=False)

    def get(self, block: bool = True, timeout: float | None = None) -> cmd.Command:
        """The next command, from the file first; the file is looked at every POLL_SECONDS at most, so a step
        costs a clock reading. Blocking, this waits on the queue POLL_SECONDS at a time."""
        self._answer_pending()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            command = self._next_from_file(force=block)
            if command is not None:
                return command
            wait = POLL_SECONDS if deadline is None else min(POLL_SECONDS, deadline - time.monotonic())
            if not block or wait <= 0:
                return self.queue.get_nowait()
            try:
                return self.queue.get(timeout=wait)
            except queue.Empty:
                continue

    def _next_from_file(self, force: bool) -> cmd.Command | None:
        now = time.monotonic()
        if not self._read and (force or now >= self._next_poll):
            self._next_poll = now + POLL_SECONDS
            self._read = [decode(line) for line in self.tail.read()]
        while self._read:
            entry = self._read.pop(0)
            if entry.command is None:  # unreadable: answered now, and said on the terminal
                self._inner(ev.CommandRejected(entry.why))
                self._answer(entry, entry.why)
                continue
            self._pending, self._rejected = entry, []
            return entry.command
        return None

    def _answer_pending(self) -> None:
        entry, self._pending = self._pending, None
        if entry is not None:
            self._answer(entry, self._rejected[0] if self._rejected else "")

    def _answer(self, entry: FileCommand, why: str) -> None:
        row = {"step": self.trainer.step, "id": entry.id, "command": entry.kind,
               "answer": "rejected" if why else "accepted"}
        self.trainer._log_change({**row, "why": why} if why else row)

    def _observe(self, event: ev.Event) -> None:
        if self._pending is not None and isinstance(event, ev.CommandRejected):
            self._rejected.append(event.why)
        elif isinstance(event, (ev.Paused, ev.Resumed)):
            self.beat()  # the heartbeat says so before anyone hears of it
        elif isinstance(event, (ev.Finished, ev.Failed)):
            self.close(getattr(event, "reason", "failed"))
        self._inner(event)

    # -- heartbeat --------------------------------------------------------------------------------
    def _beat_loop(self) -> None:
        while not self._stopped.wait(HEARTBEAT_SECONDS):
            self.beat()

    def beat(self) -> None:
        trainer = self.trainer
        with self._lock:
            state = {"state": self._state, "pid": os.getpid(), "host": socket.gethostname(),
                     "device": str(trainer.device), "step": trainer.step, "paused": bool(trainer.paused),
                     "time": time.time(), "every": HEARTBEAT_SECONDS}
            if self._reason:
                state["reason"] = self._reason
            path = self.folder / HEARTBEAT_FILE
            tmp = path.with_name(f"{HEARTBEAT_FILE}.{os.getpid()}.tmp")
            try:
                tmp.write_text(json.dumps(state), encoding="utf-8")
                os.replace(tmp, path)  # no fsync: a heartbeat lost in a power cut only looks stale
            except OSError:
                pass  # a full disk: the run's own writes say so; a stale heartbeat says it to readers

    def close(self, reason: str) -> None:
        """The run ended: answer what is left in the file (not done), mark the heartbeat finished, stop it."""
        if self._stopped.is_set():
            return
        self._answer_pending()
        for entry in self._read + [decode(line) for line in self.tail.read()]:
            self._answer(entry, entry.why or f"The run had ended ({reason}) at step {self.trainer.step}, so "
                                              f"this was not done.")
        self._read = []
        with self._lock:
            self._state, self._reason = "finished", reason
        self._stopped.set()
        self.beat()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)


# -- reading a heartbeat (the window) --------------------------------------------------------------------
def read_heartbeat(run_dir: Path) -> dict | None:
    try:
        beat = json.loads((Path(run_dir) / HEARTBEAT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return beat if isinstance(beat, dict) else None


def _pid_gone(beat: dict) -> bool:
    pid = beat.get("pid")
    if os.name != "posix" or beat.get("host") != socket.gethostname() or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def judge(beat: dict | None, age: float | None = None) -> str:
    """'running', 'finished', 'died' (its process on this host is gone), 'stale' (no heartbeat for STALE_SECONDS:
    it died, or the folder stopped syncing) or 'none' (no heartbeat: a window's run, or an older one). age: the
    seconds since the heartbeat last changed, when the reader knows it; else its time against this clock."""
    if beat is None:
        return "none"
    if beat.get("state") == "finished":
        return "finished"
    if _pid_gone(beat):
        return "died"
    if age is None:
        stamp = beat.get("time")
        age = time.time() - stamp if isinstance(stamp, (int, float)) else float("inf")
    return "stale" if age > STALE_SECONDS else "running"
