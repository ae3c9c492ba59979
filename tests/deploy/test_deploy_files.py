"""The deploy files that cannot run here, held to their rules: the containers (no Docker engine
runs on these machines; .ci/run lints them with hadolint too) and the udev rules (no cameras)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DOCKERFILES = sorted((DEPLOY / "docker").glob("Dockerfile.*"))


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def test_there_is_a_dockerfile_for_intel_cpus_and_for_jetsons():
    assert [p.name for p in DOCKERFILES] == ["Dockerfile.jetson", "Dockerfile.openvino"]


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_a_container_runs_serve_as_a_non_root_user_with_config_and_results_as_volumes(path):
    steps = _instructions(path)
    users = [args for name, args in steps if name == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    volumes = " ".join(args for name, args in steps if name == "VOLUME")
    assert '"/etc/edgeseg"' in volumes and '"/var/lib/edgeseg"' in volumes
    assert dict(steps)["ENTRYPOINT"] == '["edgeseg"]' and '"serve"' in dict(steps)["CMD"]
    runs = " ".join(args for name, args in steps if name == "RUN")
    assert "--no-index" in runs  # from the wheelhouse only, as an offline install
    assert not re.search(r"\b(torch|nncf|onnxslim)\b", runs)  # the run side


def test_the_openvino_image_is_slim_and_the_jetson_image_is_jetpacks():
    bases = {p.name: dict(_instructions(p))["FROM"] for p in DOCKERFILES}
    assert re.match(r"python:3\.\d+-slim", bases["Dockerfile.openvino"])
    assert bases["Dockerfile.jetson"].startswith("nvcr.io/nvidia/l4t-jetpack:r36")
    assert "onnx" not in dict(_instructions(DEPLOY / "docker" / "Dockerfile.openvino"))["RUN"].replace(
        "onnxruntime", "")


RULE_KEY = re.compile(r'^(?P<key>[A-Z_]+(\{[^}]+\})?)(?P<op>==|!=|\+=|-=|:=|=)"(?P<value>[^"]*)"$')
MATCH_KEYS = {"SUBSYSTEM", "KERNEL", "ACTION", "DRIVERS", "ATTRS", "ATTR", "ENV"}
ASSIGN_KEYS = {"GROUP", "MODE", "OWNER", "TAG", "ENV", "SYMLINK"}


def test_the_udev_rules_parse_and_give_the_cameras_to_the_services_group():
    rules = [line for line in (DEPLOY / "udev" / "72-edgeseg-cameras.rules").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert len(rules) == 2
    for rule in rules:
        pairs = [RULE_KEY.match(part.strip()) for part in rule.split(",")]
        assert all(pairs), rule
        for pair in pairs:
            key = pair["key"].split("{")[0]
            assert key in (MATCH_KEYS if pair["op"] in ("==", "!=") else ASSIGN_KEYS), rule
        assigned = {p["key"]: p["value"] for p in pairs if p["op"] == "="}
        assert assigned["GROUP"] == "video" and assigned["MODE"] == "0660"
    unit = (DEPLOY / "systemd" / "edgeseg.service").read_text()
    assert "SupplementaryGroups=video" in unit
    assert "SUBSYSTEM==\"video4linux\"" in rules[0] and "*:ef05??:*" in rules[1]  # V4L2, USB3 Vision
