"""Faults in the data a user brings: corrupt bookmarks, odd image folders, stopped and crashed downloads."""
import http.server
import os
import struct
import threading
import time
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from engine.data import DownloadError
from engine.data.download import download
from engine.data.images import MAX_IMAGE_PIXELS, load_folder
from engine.latent import EXPLORER_SEED_MAX, LatentPoint, load_bookmarks, save_bookmarks
from helpers import LocalServer


# -- bookmarks ----------------------------------------------------------------------------------------

def test_corrupt_bookmarks_are_moved_aside_not_overwritten(tmp_path):
    path = tmp_path / "bookmarks.json"
    path.write_text('[{"seed": 3, "name": "keep me"', encoding="utf-8")  # cut off mid-way
    original = path.read_bytes()
    told = []
    assert load_bookmarks(tmp_path, warn=told.append) == []
    backups = list(tmp_path.glob("bookmarks.json.corrupt-*"))
    assert len(backups) == 1 and backups[0].read_bytes() == original
    assert len(told) == 1 and "bookmarks.json" in told[0] and backups[0].name in told[0]
    save_bookmarks(tmp_path, [LatentPoint(7, name="new")])
    assert backups[0].read_bytes() == original
    assert [p.name for p in load_bookmarks(tmp_path)] == ["new"]


def test_saving_over_a_corrupt_file_keeps_it(tmp_path):
    path = tmp_path / "bookmarks.json"
    path.write_bytes(b"\xff\xfe not json")
    save_bookmarks(tmp_path, [LatentPoint(1, name="a")])  # without a load first
    backups = list(tmp_path.glob("bookmarks.json.corrupt-*"))
    assert len(backups) == 1 and backups[0].read_bytes() == b"\xff\xfe not json"
    path.write_text("{}", encoding="utf-8")  # a second corrupt file in the same second: another backup
    with pytest.warns(RuntimeWarning, match="not a valid bookmarks file"):
        assert load_bookmarks(tmp_path) == []
    assert len(list(tmp_path.glob("bookmarks.json.corrupt-*"))) == 2


def test_bad_bookmark_entries_are_skipped_and_the_rest_load(tmp_path):
    text = ('[{"seed": 1e400, "name": "inf"}, {"seed": %d, "name": "huge"}, {"seed": -1, "name": "neg"},'
            ' {"seed": 4, "continuous": {"0": 1e400}, "name": "inf code"},'
            ' {"seed": 4, "categorical": {"0": 1e400}, "name": "inf category"},'
            ' {"seed": 4, "label": "x", "name": "bad label"}, "not an object", [1, 2],'
            ' {"seed": 5, "continuous": {"1": 0.5}, "categorical": {"0": 2}, "label": 1, "name": "good"},'
            ' {"seed": %d, "name": "largest"}, {"seed": %s, "name": "long"}]') % (10 ** 30, EXPLORER_SEED_MAX, "9" * 5000)
    (tmp_path / "bookmarks.json").write_text(text, encoding="utf-8")
    told = []
    points = load_bookmarks(tmp_path, warn=told.append)
    assert [p.name for p in points] == ["good", "largest"]
    assert points[0].continuous == {1: 0.5} and points[0].categorical == {0: 2} and points[0].label == 1
    for p in points:
        torch.Generator().manual_seed(p.seed)
    assert len(told) == 1 and "Skipped 9 bookmarks" in told[0]
    backups = list(tmp_path.glob("bookmarks.json.corrupt-*"))
    assert len(backups) == 1 and backups[0].read_text(encoding="utf-8") == text
    assert [p.name for p in load_bookmarks(tmp_path, warn=told.append)] == ["good", "largest"]
    assert len(told) == 1  # the file was rewritten clean


def test_deeply_nested_bookmarks_are_treated_as_corrupt(tmp_path):
    (tmp_path / "bookmarks.json").write_text("[" * 200_000 + "]" * 200_000, encoding="utf-8")
    told = []
    assert load_bookmarks(tmp_path, warn=told.append) == []
    assert told and list(tmp_path.glob("bookmarks.json.corrupt-*"))


# -- image folders -------------------------------------------------------------------------------------

def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height (grey, 8 bit) with almost no pixel data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def test_sixteen_bit_images_are_scaled_not_white(tmp_path):
    ramp = np.linspace(0, 65535, 32 * 32).reshape(32, 32).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")  # opens as mode I;16
    with Image.open(tmp_path / "deep.png") as img:
        assert img.mode.startswith("I;16")
    Image.fromarray(ramp.astype(np.int32)).save(tmp_path / "deep.tif")  # opens as mode I
    with Image.open(tmp_path / "deep.tif") as img:
        assert img.mode == "I"
    for channels in (1, 3):
        images = load_folder(str(tmp_path), 32, channels)
        assert images.shape == (2, channels, 32, 32)
        for picture in images:
            expected = np.rint(ramp / 257.0)
            assert np.abs(picture[0].numpy().astype(float) - expected).max() <= 2
            assert picture.float().mean() < 200


def test_decompression_bombs_are_skipped_before_decoding(tmp_path, monkeypatch):
    Image.fromarray(np.full((20, 20, 3), 99, np.uint8)).save(tmp_path / "fine.png")
    (tmp_path / "bomb64mp.png").write_bytes(png_declaring(8000, 8000))  # over our limit, under PIL's
    (tmp_path / "bomb100mp.png").write_bytes(png_declaring(10_000, 10_000))  # PIL warns
    (tmp_path / "bomb400mp.png").write_bytes(png_declaring(20_000, 20_000))  # PIL refuses
    decoded = []
    load = ImageFile.ImageFile.load

    def spy(self):
        decoded.append(self.size)
        return load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    told = []
    images = load_folder(str(tmp_path), 16, 3, warn=told.append)
    assert len(images) == 1
    assert all(w * h <= MAX_IMAGE_PIXELS for w, h in decoded)
    assert len(told) == 1 and "Skipped 3 of 4 files" in told[0] and "megapixels" in told[0]


def test_links_outside_the_folder_are_not_followed(tmp_path):
    secret = tmp_path / "elsewhere"
    secret.mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(secret / "private.png")
    folder = tmp_path / "pics"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(np.full((8, 8), 200, np.uint8)).save(folder / "own.png")
    os.symlink(secret / "private.png", folder / "linked.png")
    os.symlink(secret, folder / "linked_dir")
    os.symlink(folder / "own.png", folder / "sub" / "alias.png")  # inside the folder: read
    told = []
    images = load_folder(str(folder), 8, 1, warn=told.append)
    assert len(images) == 2 and int(images.min()) > 100  # the black picture outside never came in
    assert len(told) == 1 and "Skipped 2 of 4 files" in told[0] and "outside the folder" in told[0]


# -- downloads -------------------------------------------------------------------------------------------

class ChunkServer(LocalServer):
    """Serves `payload` on 127.0.0.1 in pieces; with a `gate` (a semaphore) each piece waits for a release, so
    a test decides how far a download gets. `sent` counts the pieces written."""

    def __init__(self, payload: bytes, piece: int = 1 << 16, gate: threading.Semaphore | None = None):
        server = self
        self.sent = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                try:
                    for start in range(0, len(payload), piece):
                        if gate is not None and not gate.acquire(timeout=30):
                            return  # nobody asked for more: give up, the client sees a broken download
                        self.wfile.write(payload[start:start + piece])
                        self.wfile.flush()
                        server.sent += 1
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        super().__init__(Handler, "/file.bin")


def test_a_download_stops_between_chunks_when_cancelled(tmp_path):
    """The server hands out one 64 KiB piece per progress report; after the third the user presses Stop: the
    download ends there (not after all 200 pieces) and leaves no file behind."""
    payload = os.urandom(200 * (1 << 16))
    gate = threading.Semaphore(1)
    stop = threading.Event()
    seen = []

    def progress(done, total):
        seen.append(done)
        if len(seen) == 3:
            stop.set()
        else:
            gate.release()  # the next piece

    dest = tmp_path / "cache" / "file.bin"
    with ChunkServer(payload, gate=gate) as server:
        with pytest.raises(DownloadError, match="cancelled"):
            download(server.url, dest, None, progress, cancel=stop)
        assert len(seen) == 3 and server.sent == 3
        assert not dest.exists() and not list(dest.parent.glob("*.part"))
        gate.release(400)  # the handler still waiting for a release finishes on the closed connection
    calls = []

    def cancel():  # a plain callable works too: true on its third call
        calls.append(1)
        return len(calls) > 2

    with ChunkServer(payload) as server:
        with pytest.raises(DownloadError, match="cancelled"):
            download(server.url, dest, None, cancel=cancel)
    assert len(calls) == 3 and not list(dest.parent.glob("*.part"))


def test_stale_part_files_of_the_same_file_are_cleared(tmp_path):
    payload = bytes(range(256)) * 64
    served = tmp_path / "served"
    served.mkdir()
    (served / "file.bin").write_bytes(payload)
    cache = tmp_path / "cache"
    cache.mkdir()
    stale = [cache / "file.bin.abc123.part", cache / "file.bin.x_y.part"]
    keep = [cache / "other.bin.abc123.part", cache / "file.bin.part", cache / "file.binx.abc.part",
            cache / "file.bin.notes"]
    for path in stale + keep:
        path.write_bytes(b"left over")
        os.utime(path, (time.time() - 3600, time.time() - 3600))
    fresh = cache / "file.bin.live.part"  # another process's download, still being written
    fresh.write_bytes(b"in progress")
    with ChunkServer(payload) as server:
        download(server.url, cache / "file.bin", None)
    assert (cache / "file.bin").read_bytes() == payload
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in keep) and fresh.exists()


def test_make_dataset_passes_the_cancel_hook_to_its_downloads(tmp_path, monkeypatch):
    from engine.data import images, make_dataset
    from engine.presets import load_preset
    monkeypatch.setitem(images.SOURCES, "mnist", {"base": "http://127.0.0.1:9/", "md5": {"a.gz": "0" * 32}})
    config = load_preset("dcgan_fashion", ["dataset=mnist"])
    stop = threading.Event()
    stop.set()
    with pytest.raises(DownloadError, match="cancelled"):
        make_dataset(config, cancel=stop)
    assert not list((tmp_path / "cache").rglob("*.part"))
