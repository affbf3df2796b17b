"""The fault campaigns of bench/faults.py, each run small: kill -9 and resume, a full disk, fuzzed live commands,
killing the studio window or its worker and reopening the run.
`python bench/faults.py all` runs them at full size (50 kills, 1000 command sequences)."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import faults  # noqa: E402


def test_kill_9_and_resume_loses_at_most_one_interval_and_corrupts_nothing(tmp_path):
    result = faults.kill_campaign(kills=3, seed=1, workdir=tmp_path)
    assert result.ok, result.line
    assert result.details["kills"] == 3 and result.details["resumes"] == 3


def test_a_full_disk_at_a_checkpoint_ends_the_run_in_one_sentence_and_keeps_the_files(tmp_path):
    result = faults.disk_campaign(runs=1, workdir=tmp_path)  # the checkpoint-write scenario
    assert result.ok, result.line


def test_fuzzed_live_commands_are_answered_and_never_hang_or_fail_the_run():
    result = faults.fuzz_campaign(sequences=30, seed=2, probes=False)
    assert result.ok, result.line
    assert "30 sequences run" in result.line


def test_edge_values_in_live_commands_are_refused_not_fatal(tmp_path):
    config = faults.tiny_config()
    from engine import algorithms
    dataset = algorithms.get(config.algorithm).make_data(config)
    problems, notes = faults.probe_edges(config, tmp_path, dataset)
    assert not problems, "; ".join(problems)


def test_killing_the_worker_or_the_window_then_reopening_loses_little_and_leaves_no_orphan(tmp_path):
    pytest.importorskip("PySide6")
    result = faults.window_campaign(kills=2, seed=1, workdir=tmp_path)  # one worker kill, one window kill
    assert result.ok, result.line
    assert result.details["kills"] == {"worker": 1, "window": 1} and result.details["reopens"] == 2
    assert result.details["orphans"] == 0
