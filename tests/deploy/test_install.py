"""The offline install, end to end: a Debian 12 root made with debootstrap, a wheelhouse built
by deploy/build-wheelhouse.sh, and deploy/install.sh run inside the root in a network namespace
with nothing but an unconfigured loopback (so nothing can come from the network). Then the
service's user checks a station and runs a bundle there, the run-side venv rebuilds a bundle with
``compile --from``, a second install keeps the configuration, and --uninstall leaves the results.

Needs root (chroot, unshare) and Debian's debootstrap, as .ci/run provides; the root and the
wheels come from Debian's and PyPI's servers, which is why it is slow."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("debootstrap") is None or shutil.which("unshare") is None
                       or os.geteuid() != 0, reason="needs root, unshare and Debian's debootstrap"),
]


@pytest.fixture(scope="module")
def debian_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("debian") / "root"
    done = subprocess.run(["debootstrap", "--variant=minbase", "--include=python3,python3-venv,systemd,procps",
                           "bookworm", str(root), "http://deb.debian.org/debian"],
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return root


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheelhouse")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_FIND_LINKS")}
    done = subprocess.run([str(DEPLOY / "build-wheelhouse.sh"), "-o", str(out)], capture_output=True, text=True,
                          timeout=1200, env={**env, "PYTHON": sys.executable})
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def in_root(root: Path, command: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """``command`` in bash inside ``root``, with no network and a clean environment."""
    mounts = f"mount -t proc proc {root}/proc && mount --rbind /sys {root}/sys && mount --rbind /dev {root}/dev"
    inner = f"chroot {root} /usr/bin/env -i PATH={PATH} HOME=/root LANG=C.UTF-8 /bin/bash -c \"$0\""
    return subprocess.run(["unshare", "--net", "--mount", "--fork", "bash", "-c", f"{mounts} && {inner}", command],
                          capture_output=True, text=True, timeout=timeout)


def _station(bundle: str, frames: str) -> str:
    return (f"station: check\nresults: /var/lib/edgeseg/results\nmetrics: null\n"
            f"cameras:\n  - name: top\n    source: {frames}\n    bundle: {bundle}\n")


AS_SERVICE = "runuser -u edgeseg -- env EDGESEG_CACHE_DIR=/var/lib/edgeseg/cache /opt/edgeseg/venv/bin/edgeseg"


def test_the_offline_install_runs_a_station_and_uninstalls_to_the_results(debian_root, wheelhouse, bundle_factory,
                                                                         synth_data):
    root = debian_root
    shutil.copytree(wheelhouse, root / "tmp/wh")
    shutil.copytree(synth_data / "images", root / "tmp/frames")
    done = in_root(root, "grep -c : /proc/net/dev")
    assert done.stdout.strip() == "1", done.stdout  # loopback only: nothing to download from
    done = in_root(root, "/tmp/wh/install.sh")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "edgeseg.service enabled" in done.stdout
    assert (root / "etc/systemd/system/multi-user.target.wants/edgeseg.service").is_symlink()
    assert (root / "etc/udev/rules.d/72-edgeseg-cameras.rules").is_file()
    assert "edgeseg:" in (root / "etc/passwd").read_text()

    bundle = "/var/lib/edgeseg/bundles/parts"
    shutil.copytree(bundle_factory("openvino", "fp32").path, root / bundle.lstrip("/"))
    station = _station(bundle, "/tmp/frames")
    (root / "etc/edgeseg/station.yaml").write_text(station)
    done = in_root(root, f"chown -R edgeseg:edgeseg /var/lib/edgeseg/bundles && {AS_SERVICE} serve --check "
                         "/etc/edgeseg/station.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    done = in_root(root, f"{AS_SERVICE} run {bundle} /tmp/frames --out /var/lib/edgeseg/results/check "
                         "--max-frames 5 --quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    results = root / "var/lib/edgeseg/results/check/results.jsonl"
    assert len(results.read_text().splitlines()) == 5
    _the_run_side_venv(root, bundle)

    done = in_root(root, "/tmp/wh/install.sh && systemd-analyze verify /etc/systemd/system/edgeseg.service")
    assert done.returncode == 0 and not done.stderr.strip(), done.stdout + done.stderr
    assert (root / "etc/edgeseg/station.yaml").read_text() == station  # a second install keeps it
    done = in_root(root, "/tmp/wh/install.sh --uninstall")
    assert done.returncode == 0, done.stdout + done.stderr
    for gone in ("opt/edgeseg", "etc/edgeseg", "etc/systemd/system/edgeseg.service",
                 "etc/systemd/system/multi-user.target.wants/edgeseg.service",
                 "etc/udev/rules.d/72-edgeseg-cameras.rules", "var/lib/edgeseg/cache"):
        assert not (root / gone).exists() and not (root / gone).is_symlink(), gone
    assert "edgeseg:" not in (root / "etc/passwd").read_text()
    assert len(results.read_text().splitlines()) == 5 and (root / bundle.lstrip("/")).is_dir()
    assert (root / "var/lib/edgeseg/station.yaml.uninstalled").read_text() == station


def _the_run_side_venv(root: Path, bundle: str) -> None:
    """No torch, no onnx; a build-side command says which extra; compile --from rebuilds a bundle."""
    venv = "/opt/edgeseg/venv/bin"
    done = in_root(root, f"{venv}/python -c 'import onnx' 2>&1; {venv}/python -c 'import torch' 2>&1; true")
    assert done.stdout.count("ModuleNotFoundError") == 2, done.stdout
    done = in_root(root, f"{venv}/edgeseg train /tmp/frames -o /tmp/run")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "pip install 'edgeseg[build]'" in done.stderr
    done = in_root(root, f"{venv}/edgeseg compile --from {bundle} -o {bundle}-here && "
                         f"{venv}/edgeseg info {bundle}-here")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "parity record of the original build kept" in done.stdout and "rebuilt from" in done.stdout
