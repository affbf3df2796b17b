"""The wheel works outside the source tree: built, installed non-editable into a fresh venv (its dependencies
borrowed from this one), and run from an unrelated folder, it lists the presets, trains, samples and
evaluates with the evaluator it ships."""
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(args, **kwargs):
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, **kwargs)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_the_wheel_ships_presets_and_evaluator_and_runs_from_anywhere(tmp_path):
    run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "dist")], cwd=tmp_path)
    wheel = next((tmp_path / "dist").glob("gan_studio-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "engine/resources/presets/ring8.toml" in names and "engine/resources/evaluator_fashion_mnist.pt" in names
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    site = Path(run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"])
                .stdout.strip())
    # torch, numpy, ... from this environment; a plain path line, so this venv's editable finder stays out
    (site / "borrowed.pth").write_text(sysconfig.get_path("purelib") + "\n")
    run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(site), str(wheel)])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    python = str(venv / "bin" / "python")
    cli = [python, "-m", "engine.cli"]
    where = run([python, "-c", "import engine; print(engine.__file__)"], cwd=elsewhere, env=env).stdout
    assert where.startswith(str(site)), where  # the installed copy, not the source tree
    listed = run(cli + ["presets"], cwd=elsewhere, env=env).stdout
    assert "ring8" in listed and "dcgan_fashion" in listed and "seqgan_oracle" in listed
    run(cli + ["train", "ring8", "--steps", "30", "--out", "run", "--set", "metrics_every=0"], cwd=elsewhere, env=env)
    checkpoint = elsewhere / "run" / "checkpoints" / "step_0000030.pt"
    run(cli + ["sample", str(checkpoint), "--n", "16", "--out", "grid.png"], cwd=elsewhere, env=env)
    assert (elsewhere / "grid.png").stat().st_size > 0
    evaluated = run(cli + ["eval", str(checkpoint), "--n", "500"], cwd=elsewhere, env=env).stdout
    assert "modes_captured" in evaluated
    found = run([python, "-c", "from engine.metrics.evaluator import WEIGHTS; print(WEIGHTS.is_file(), WEIGHTS)"],
                cwd=elsewhere, env=env).stdout
    assert found.startswith("True " + str(site))  # the evaluator ships inside the package
