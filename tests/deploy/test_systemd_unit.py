"""The systemd unit, checked by systemd itself: `systemd-analyze verify` finds nothing wrong in
it but the program it starts (not installed here), and `systemd-analyze security` rates its
exposure no worse than it is now."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "systemd" / "edgeseg.service"
EXPOSURE_NOW = 1.9  # docs/deploy.md; lower is better, 2.5 is the top of "OK"

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                reason="systemd-analyze is missing (Debian's systemd package)")


def test_systemd_finds_nothing_wrong_in_the_unit_but_the_program_not_installed_here():
    result = subprocess.run(["systemd-analyze", "verify", str(UNIT)], capture_output=True, text=True, timeout=60)
    complaints = [line for line in result.stderr.splitlines() if line.strip()]
    assert complaints == ["edgeseg.service: Command /opt/edgeseg/venv/bin/edgeseg is not executable: "
                          "No such file or directory"], result.stderr


def test_the_units_exposure_does_not_get_worse():
    result = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(UNIT)], capture_output=True,
                            text=True, timeout=60)
    found = re.search(r"Overall exposure level for edgeseg.service: (\d+\.\d+) (\w+)", result.stdout)
    assert found, result.stdout[-2000:] + result.stderr
    assert float(found.group(1)) <= EXPOSURE_NOW and found.group(2) in ("OK", "SAFE")


def test_the_unit_runs_serve_as_a_notify_service_with_a_watchdog_as_an_unprivileged_user():
    text = UNIT.read_text()
    settings = dict(re.findall(r"^(\w+)=(.*)$", text, re.MULTILINE))
    assert settings["Type"] == "notify" and settings["Restart"] == "on-failure"
    assert settings["User"] == "edgeseg" and settings["CapabilityBoundingSet"] == ""
    assert settings["ExecStart"].endswith("edgeseg serve /etc/edgeseg/station.yaml --log-format json")
    assert settings["ReadWritePaths"] == "/var/lib/edgeseg" and settings["DevicePolicy"] == "closed"
