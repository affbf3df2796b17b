"""The birthday-paradox support test (engine.metrics.birthday, `gan-studio birthday`, Tools ▸ Duplicates…)."""
import threading

import numpy as np
import pytest
import torch

from engine.data.images import DEBIAN_FASHION_MNIST
from engine.metrics import birthday

HAVE_FASHION = (DEBIAN_FASHION_MNIST / "t10k-images-idx3-ubyte.gz").is_file()
needs_fashion = pytest.mark.skipif(not HAVE_FASHION, reason="the real Fashion-MNIST is not installed "
                                                            "(apt-get install dataset-fashion-mnist)")


@pytest.fixture(scope="module")
def real():
    """The real Fashion-MNIST test set in [−1, 1], the evaluator, and the thresholds measured on it."""
    if not HAVE_FASHION:
        pytest.skip("the real Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    from engine.data.images import load_idx_dataset
    from engine.metrics.evaluator import load_evaluator
    images, _ = load_idx_dataset("fashion_mnist", "", False, None, train=False)
    evaluator = load_evaluator()
    calibration = birthday.calibrate(images, evaluator)
    return images.float().div(127.5).sub(1.0), evaluator, calibration


def repeating(pool: torch.Tensor, n: int, seed: int, noise: float = 0.01):
    """A fake generator whose support is the images of `pool`: n draws with tiny noise, and which one each is."""
    g = torch.Generator().manual_seed(seed)
    source = torch.randint(0, len(pool), (n,), generator=g)
    return (pool[source] + noise * torch.randn(n, *pool.shape[1:], generator=g)).clamp(-1, 1), source


def test_closest_pairs_are_exact_and_chunked():
    z = torch.randn(700, 5, generator=torch.Generator().manual_seed(0))
    z[650] = z[3] + 1e-3  # one planted near-copy across two chunks
    pairs, below = birthday.closest_pairs(z, k=4, threshold=0.01, chunk=128)
    d = torch.cdist(z, z) + torch.eye(700) * 1e9
    best = torch.triu(d, 1).masked_fill(torch.tril(torch.ones(700, 700, dtype=torch.bool)), 1e9)
    values, flat = best.flatten().topk(4, largest=False)
    assert [(i, j) for i, j, _ in pairs] == [(int(f) // 700, int(f) % 700) for f in flat]
    assert pairs[0][:2] == (3, 650) and pairs[0][2] == pytest.approx(1e-3 * 5 ** 0.5, rel=1e-2)
    assert below == 1
    assert birthday.size_ladder(50, 400) == [50, 71, 100, 141, 200, 283, 400]


@needs_fashion
def test_real_test_set_reports_no_duplicates(real):
    images, evaluator, calibration = real
    # the rule: half the 1st percentile of real nearest-neighbour distances, far below the typical neighbour
    assert 0.5 < calibration.thresholds["feature"] < 2.0 and 1.0 < calibration.thresholds["pixel"] < 3.0
    for seed in range(5):
        pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:400]
        result = birthday.find_duplicates(images[pick], calibration, evaluator)
        assert not result.duplicates, result.lines()
        assert not any(p.duplicate for p in result.pairs)
        assert {p.space for p in result.pairs} == {"feature", "pixel"}
        closest = min(p.distance for p in result.pairs if p.space == "pixel")
        assert closest > 1.5 * calibration.thresholds["pixel"]  # not a near miss
        assert result.verdict() == "No duplicates among 400 samples."


@needs_fashion
def test_a_generator_repeating_five_images_is_caught(real):
    images, evaluator, calibration = real
    pool = images[torch.randperm(len(images), generator=torch.Generator().manual_seed(7))[:5]]
    fake, source = repeating(pool, 400, seed=1)
    result = birthday.find_duplicates(fake, calibration, evaluator, k=8)
    assert result.duplicates and "Duplicates among 400 samples" in result.verdict()
    assert len(result.pairs) == 16 and all(p.duplicate for p in result.pairs)
    assert all(source[p.i] == source[p.j] for p in result.pairs)  # true repeats, in both spaces
    counts = np.bincount(source.numpy(), minlength=5)
    repeats = int(sum(c * (c - 1) // 2 for c in counts))
    assert result.counts == {"feature": repeats, "pixel": repeats}  # every repeat, and nothing else
    picture = birthday.pairs_picture(result)
    assert picture.ndim == 3 and picture.shape[0] > 16 * 84


@needs_fashion
@pytest.mark.parametrize("m", [100, 1000])
def test_support_estimate_is_near_the_true_support(real, m):
    images, evaluator, calibration = real
    pool = images[torch.randperm(len(images), generator=torch.Generator().manual_seed(m))[:m]]
    draw = lambda n, trial: repeating(pool, n, seed=10_000 * trial + n)[0]
    estimate = birthday.support_estimate(draw, birthday.size_ladder(5, 400), calibration, evaluator, trials=10)
    assert estimate.smallest is not None, estimate
    assert m / 4 <= estimate.estimate <= 4 * m, estimate
    assert estimate.rates[-1] >= 0.5 and all(r < 0.5 for r in estimate.rates[:-1])
    assert f"{estimate.estimate:,}" in estimate.sentence()


# -- the CLI and the window ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A DCGAN run trained 2 steps on the tiny fake Fashion-MNIST (its checkpoint is all that matters)."""
    from engine.cli import main
    from tests.conftest import make_fake_idx_dir
    base = tmp_path_factory.mktemp("birthday")
    fake = make_fake_idx_dir(base / "fake-fashion")
    run = base / "run"
    mp = pytest.MonkeyPatch()
    mp.setenv("GAN_STUDIO_HOME", str(base / "home"))
    mp.setenv("GAN_STUDIO_CACHE", str(base / "cache"))
    try:
        assert main(["train", "dcgan_fashion", "--steps", "2", "--out", str(run), "--set", f"data.path={str(fake)!r}",
                     "--set", "train.metrics_every=0"]) == 0
    finally:
        mp.undo()
    return run


def newest(run):
    from studio.runs import latest_checkpoint
    return latest_checkpoint(run)


def test_cli_writes_the_pairs_and_says_the_verdict(trained_run, tmp_path, capsys):
    from PIL import Image

    from engine.cli import main
    out = tmp_path / "pairs.png"
    assert main(["birthday", str(newest(trained_run)), "--s", "120", "--scan", "--trials", "3",
                 "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "Closest pairs:" in said and "evaluator features" in said and "pixels" in said
    assert "uplicates among 120 samples" in said  # "No duplicates …" or "Duplicates …"
    assert "support" in said and f"Wrote {out}" in said
    with Image.open(out) as img:
        assert img.size[0] > 2 * 84 and img.size[1] > 16 * 84


def test_cli_refuses_a_model_without_images(capsys):
    from pathlib import Path

    from engine.cli import main
    ring = Path(__file__).parent / "fixtures" / "v1_ring8.pt"
    assert main(["birthday", str(ring)]) == 2
    err = capsys.readouterr().err.strip()
    assert "compares images" in err and "2-D points" in err
    assert len(err.splitlines()) == 1 and err.count(". ") == 0


def test_studio_dialog_shows_pairs_of_an_opened_run(qtbot, tmp_path, trained_run):
    pytest.importorskip("pytestqt")
    from PySide6.QtCore import QSettings

    from studio.window import MainWindow
    win = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat))
    win.close_policy = "discard"
    qtbot.addWidget(win)
    win.duplicates_action.trigger()  # no run yet: one sentence, no thread
    dialog = win.duplicates
    dialog.run_button.click()
    assert "Open a run folder or start a run first" in dialog.status.text()
    assert dialog.run_button.isEnabled()

    assert win.open_run(trained_run)
    dialog.s.setValue(60)
    dialog.scan.setChecked(False)
    with qtbot.waitSignal(dialog.worker.done, timeout=30_000):
        dialog.run_button.click()
        assert not dialog.run_button.isEnabled()  # the work is on its own thread
    dialog.join(10)
    assert dialog.run_button.isEnabled() and dialog.progress.value() == 100
    assert "uplicates among 60 samples" in dialog.verdict.text()
    assert dialog.grid.rowCount() >= 16 and dialog.grid.count() == 3 * len(dialog.result.pairs)
    assert dialog.grid.itemAtPosition(0, 0).widget().pixmap().width() == 84
    win.close()
    assert not [t for t in threading.enumerate() if t.name == "gan-studio-duplicates"]


def test_studio_dialog_asks_a_live_run_for_a_checkpoint(qtbot, tmp_path):
    """While a run trains, the dialog asks it to save first, then samples that checkpoint (ring8: refused)."""
    pytest.importorskip("pytestqt")
    from PySide6.QtCore import QSettings

    from studio.window import MainWindow
    win = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat))
    win.close_policy = "discard"
    qtbot.addWidget(win)
    win.select_preset("ring8")
    with qtbot.waitSignal(win.bridge.started, timeout=30_000):
        win.start_action.trigger()
    win.duplicates_action.trigger()
    dialog = win.duplicates
    with qtbot.waitSignal(win.bridge.checkpointed, timeout=30_000):
        with qtbot.waitSignal(dialog.worker.failed, timeout=30_000) as failed:
            dialog.run_button.click()
    dialog.join(10)
    assert "compares images" in failed.args[0] and "2-D points" in failed.args[0]
    assert dialog.status.text() == failed.args[0] and dialog.run_button.isEnabled()
    win.close()
    win.bridge.join(30)
