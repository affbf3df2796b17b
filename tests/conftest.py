import gzip
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def make_fake_idx_dir(folder: Path, n: int = 256, seed: int = 0) -> Path:
    """A tiny Fashion-MNIST look-alike: class c is a bright bar at row 2c + 4."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n)
    images = rng.integers(0, 30, size=(n, 28, 28))
    for i, c in enumerate(labels):
        images[i, 2 * c + 4: 2 * c + 7, 4:24] = 230
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "t10k"):
        write_idx(folder / f"{split}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz", labels)
    return folder


@pytest.fixture(scope="session")
def fake_fashion(tmp_path_factory) -> Path:
    return make_fake_idx_dir(tmp_path_factory.mktemp("fake-fashion"))


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """User presets, caches and settings go to a temp folder, never the real home."""
    monkeypatch.setenv("GAN_STUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI=true a test that skips for want of a Debian data package (its reason names the apt-get line)
    fails instead: CI installs the real data, and a green run must mean those tests ran."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI", "").lower() in ("1", "true", "yes") and report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if "apt-get install" in reason:
            report.outcome = "failed"
            report.longrepr = f"CI must run this test, but it skipped: {reason}"
