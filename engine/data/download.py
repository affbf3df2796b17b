"""Fetching data files: checksum-verified, atomic, with progress callbacks, cancellable between chunks."""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Union

ProgressFn = Callable[[int, int], None]
# Asked between chunks: a callable returning True, or anything with is_set() (a threading.Event), stops it.
CancelFn = Union[Callable[[], bool], threading.Event]

CHUNK = 1 << 16
STALE_PART_SECONDS = 120.0  # a live download writes at least every `timeout` seconds; older .part files are left-overs


class DownloadError(RuntimeError):
    """A download that failed or did not match its checksum; the message is one sentence."""


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cancelled(cancel: CancelFn | None) -> bool:
    if cancel is None:
        return False
    is_set = getattr(cancel, "is_set", None)
    return bool(is_set() if is_set is not None else cancel())


def remove_stale_parts(dest: Path, older_than: float = STALE_PART_SECONDS) -> list[Path]:
    """Delete the dest.name + ".*.part" files an earlier, crashed download of dest left beside it (only
    those untouched for older_than seconds, so another process's live download is left alone)."""
    dest = Path(dest)
    prefix, now, removed = dest.name + ".", time.time(), []
    try:
        entries = list(dest.parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(".part") and len(name) > len(prefix) + len(".part")):
            continue
        try:
            if entry.is_symlink() or not entry.is_file() or now - entry.stat().st_mtime < older_than:
                continue
            entry.unlink()
            removed.append(entry)
        except OSError:
            continue
    return removed


def download(url: str, dest: Path, md5: str | None, progress: ProgressFn | None = None,
             timeout: float = 30.0, cancel: CancelFn | None = None) -> Path:
    """Download url to dest; the file appears only once complete and verified. `cancel` (a callable or a
    threading.Event) is asked after every chunk: once it says so, the partial file is removed and
    DownloadError("... cancelled") raised. Left-over .part files of dest are cleared first."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(dest)
    stopped = DownloadError(f"The download of {url} was cancelled.")
    if cancelled(cancel):
        raise stopped
    fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    digest = hashlib.md5()
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                response = urllib.request.urlopen(url, timeout=timeout)
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                raise DownloadError(f"Could not download {url} ({reason}); check the network connection "
                                    f"or put the file in {dest.parent} by hand.") from None
            with response:
                total = int(response.headers.get("Content-Length") or 0)
                done = 0
                while True:
                    if cancelled(cancel):
                        raise stopped
                    try:
                        chunk = response.read(CHUNK)
                    except OSError as exc:  # a timeout or a dropped connection mid-way
                        raise DownloadError(f"The download of {url} broke off ({exc}); try again.") from None
                    if not chunk:
                        break
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
        if cancelled(cancel):
            raise stopped
        if md5 and digest.hexdigest() != md5:
            raise DownloadError(f"The file downloaded from {url} does not match its checksum "
                                f"(got {digest.hexdigest()}, expected {md5}); it was discarded, try again.")
        try:
            os.replace(tmp_name, dest)
        except OSError as exc:
            raise DownloadError(f"The file downloaded from {url} could not be saved as {dest} "
                                f"({exc.strerror or exc}); check that folder and try again.") from None
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return dest
