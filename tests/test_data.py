"""Data loading: real Fashion-MNIST, IDX, CIFAR-10 binary, image folders, checksum-verified downloads."""
import functools
import gzip
import hashlib
import http.server
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.presets import load_preset
from engine.data import DataError, DownloadError, make_dataset
from engine.data.download import download
from engine.data.images import DEBIAN_FASHION_MNIST, fetch_files, load_cifar10, read_idx
from helpers import Recorder, quick, LocalServer, trained_parameters, unmoved_networks
from engine import events as ev


@pytest.mark.skipif(not (DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file(),
                    reason="Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
def test_real_fashion_mnist_loads_from_the_debian_package():
    data = make_dataset(load_preset("dcgan_fashion"))
    assert len(data) == 60000 and data.shape == (1, 28, 28) and data.num_classes == 10
    x, y = data.sample(8, torch.Generator().manual_seed(0))
    assert x.min() >= -1 and x.max() <= 1 and y.dtype == torch.long


def test_idx_files_resize_and_colour(fake_fashion):
    config = load_preset("dcgan_fashion", [f"data.path={str(fake_fashion)!r}", "image_size=32", "channels=3"])
    data = make_dataset(config)
    assert data.shape == (3, 32, 32) and len(data) == 256


def test_truncated_idx_is_refused(tmp_path):
    path = tmp_path / "x.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(bytes([0, 0, 8, 1, 0, 0, 0, 10, 1, 2]))
    with pytest.raises(DataError, match="truncated"):
        read_idx(path)


def make_folder(tmp_path):
    folder = tmp_path / "pics"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(folder / f"ok{i}.png")
    Image.fromarray(rng.integers(0, 255, (50, 50), dtype=np.uint8)).save(folder / "sub" / "grey.jpg")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_image_folder_skips_and_counts_bad_files(tmp_path):
    folder = make_folder(tmp_path)
    warnings = []
    config = load_preset("dcgan_fashion", ["dataset=folder", f"data.path={str(folder)!r}", "channels=3",
                                           "image_size=32"])
    data = make_dataset(config, warn=warnings.append)
    assert len(data) == 6 and data.shape == (3, 32, 32)
    assert len(warnings) == 1 and "Skipped 2 of 8 files" in warnings[0]


def test_folder_preset_trains_and_warns(tmp_path):
    folder = make_folder(tmp_path)
    trainer, events = quick("dcgan_fashion", "dataset=folder", f"data.path={str(folder)!r}", "batch_size=4",
                            run_dir=tmp_path / "run")
    before = trained_parameters(trainer)
    assert trainer.run(2) == "done", [f.message for f in events.of(ev.Failed)]
    assert trainer.step == 2 and events.of(ev.Finished)[-1].step == 2
    assert any("Skipped 2" in w.text for w in events.of(ev.Warning))
    assert unmoved_networks(trainer, before) == []  # G and D both took optimizer steps on the folder's images
    assert (tmp_path / "run" / "checkpoints" / "step_0000002.pt").is_file()


def test_empty_or_imageless_folder_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    config = load_preset("dcgan_fashion", ["dataset=folder", f"data.path={str(tmp_path / 'empty')!r}"])
    with pytest.raises(DataError, match="is empty"):
        make_dataset(config)
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "a.txt").write_text("hello")
    config.data.path = str(tmp_path / "text")
    with pytest.raises(DataError, match="no readable image"):
        make_dataset(config)


class Server(LocalServer):
    """A file server on 127.0.0.1 for download tests."""

    def __init__(self, folder: Path):
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
        handler.log_message = lambda *a: None
        super().__init__(handler)


def test_download_verifies_checksum_and_reports_progress(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    payload = bytes(range(256)) * 1000
    (served / "file.bin").write_bytes(payload)
    progress = []
    with Server(served) as server:
        dest = download(server.url + "file.bin", tmp_path / "cache" / "file.bin", hashlib.md5(payload).hexdigest(),
                        lambda done, total: progress.append((done, total)))
        assert dest.read_bytes() == payload
        assert progress[-1] == (len(payload), len(payload))
        with pytest.raises(DownloadError, match="does not match its checksum"):
            download(server.url + "file.bin", tmp_path / "cache" / "bad.bin", "0" * 32)
        assert not (tmp_path / "cache" / "bad.bin").exists()
        assert not list((tmp_path / "cache").glob("*.part"))
        with pytest.raises(DownloadError, match="Could not download"):
            download(server.url + "missing.bin", tmp_path / "cache" / "missing.bin", None)


def test_mnist_downloads_into_the_cache_and_trains(tmp_path, monkeypatch):
    from conftest import make_fake_idx_dir
    from engine.data import images
    served = make_fake_idx_dir(tmp_path / "served")
    sums = {f.name: hashlib.md5(f.read_bytes()).hexdigest() for f in served.iterdir()}
    monkeypatch.setitem(images.SOURCES, "mnist", {"base": None, "md5": sums})
    with Server(served) as server:
        images.SOURCES["mnist"]["base"] = server.url
        trainer, events = quick("dcgan_fashion", "dataset=mnist", "batch_size=8")
    assert sorted(p.name for p in (tmp_path / "cache" / "mnist").iterdir()) == sorted(sums)
    assert any(isinstance(e, ev.Progress) and e.done == e.total for e in events)
    assert trainer.run(2) == "done"


def test_cifar10_binary_batches_are_read_without_unpickling(tmp_path):
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
            records = np.concatenate([rng.integers(0, 10, (20, 1)), rng.integers(0, 256, (20, 3072))], 1)
            data = records.astype(np.uint8).tobytes()
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    folder = tmp_path / "cifar"
    folder.mkdir()
    (folder / "cifar-10-binary.tar.gz").write_bytes(buffer.getvalue())
    images_, labels = load_cifar10(str(folder), allow_download=False)
    assert images_.shape == (100, 3, 32, 32) and labels.max() < 10
    config = load_preset("dcgan_fashion", ["dataset=cifar10", f"data.path={str(folder)!r}", "channels=3",
                                           "image_size=32"])
    assert make_dataset(config).shape == (3, 32, 32)
    (folder / "cifar-10-binary.tar.gz").write_bytes(buffer.getvalue()[:500])
    with pytest.raises(DataError, match="could not be read|truncated|lacks"):
        load_cifar10(str(folder), allow_download=False)


def test_fashion_mnist_falls_back_to_the_cache_and_then_a_download(tmp_path, monkeypatch):
    """No Debian package: the cache is used without a download; an empty cache downloads (from 127.0.0.1)."""
    from conftest import make_fake_idx_dir
    from engine.data import images
    monkeypatch.setattr(images, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian-package")
    cached = make_fake_idx_dir(tmp_path / "cache" / "fashion_mnist", n=64, seed=2)  # GAN_STUDIO_CACHE is tmp/cache
    served = make_fake_idx_dir(tmp_path / "served", n=96, seed=3)
    sums = {f.name: hashlib.md5(f.read_bytes()).hexdigest() for f in served.iterdir()}
    monkeypatch.setitem(images.SOURCES, "fashion_mnist", {"base": "http://127.0.0.1:9/nothing-here/", "md5": sums})
    assert len(make_dataset(load_preset("dcgan_fashion"))) == 64  # read from the cache: the dead URL is never asked
    for f in cached.iterdir():
        f.unlink()
    with Server(served) as server:
        images.SOURCES["fashion_mnist"]["base"] = server.url
        assert len(make_dataset(load_preset("dcgan_fashion"))) == 96
    assert {f.name: hashlib.md5(f.read_bytes()).hexdigest() for f in cached.iterdir()} == sums
