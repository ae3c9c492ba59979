"""Distributed training on PyTorch's own engine: two processes under torchrun (gloo, this
machine's CPU) see the samples one process sees with the same global batch, agree on its
losses, and write one set of checkpoints and logs, which a distributed run resumes from."""

from __future__ import annotations

import json
import subprocess
import sys


def _train(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeseg", "train", *map(str, args)], capture_output=True,
                          text=True, timeout=600)


def test_two_processes_train_as_one_with_the_same_global_batch_and_resume(synth_data, tmp_path):
    common = [synth_data, "--input-size", 64, "--batch-size", 8, "--seed", 3, "--no-calibrate", "--threads", 1,
              "--epochs", 2]
    one = _train(*common, "--epochs", 1, "-o", tmp_path / "one")
    assert one.returncode == 0, one.stderr
    two = _train(*common, "--epochs", 1, "-o", tmp_path / "two", "--distributed", 2)
    assert two.returncode == 0, two.stderr
    alone = json.loads((tmp_path / "one" / "history.json").read_text())
    shared = json.loads((tmp_path / "two" / "history.json").read_text())
    assert shared[0]["samples"] == alone[0]["samples"] > 8
    assert shared[0]["samples_digest"] == alone[0]["samples_digest"]  # the same samples, not each rank its own
    assert abs(shared[0]["train_loss"] - alone[0]["train_loss"]) < 0.15 * alone[0]["train_loss"]
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())
    assert two.stdout.count("best mIoU") == 1  # rank 0 reports, the other rank says nothing
    more = _train(*common, "-o", tmp_path / "two", "--distributed", 2, "--resume")
    assert more.returncode == 0, more.stderr
    resumed = json.loads((tmp_path / "two" / "history.json").read_text())
    assert [h["epoch"] for h in resumed] == [1, 2] and resumed[0] == shared[0]
