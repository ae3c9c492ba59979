"""The house rules that a reviewer would otherwise check by hand: short functions, links that
resolve, the kept checkpoint's checksum, and tests that say what they need."""

from __future__ import annotations

import ast
import hashlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_FUNCTION_LINES = 60
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _functions(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def test_no_function_in_the_package_is_longer_than_the_cap():
    long = [f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for path in sorted((ROOT / "edgeseg").rglob("*.py"))
            for node in _functions(ast.parse(path.read_text()))
            if node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert long == [], f"functions over {MAX_FUNCTION_LINES} lines: cut them along their seams"


def _docs() -> list[Path]:
    tracked = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *(ROOT / "export").rglob("*.md"),
               *(ROOT / "deploy").rglob("*.md"), *(ROOT / "benchmarks").rglob("*.md")]
    return [path for path in tracked if path.is_file()]


def test_every_local_link_in_the_docs_resolves():
    broken = []
    for doc in _docs():
        for target in LINK.findall(doc.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # a web address or an anchor in the same page
            if not (doc.parent / target.split("#")[0]).exists():
                broken.append(f"{doc.relative_to(ROOT)}: {target}")
    assert broken == []


def test_the_link_check_sees_a_broken_link(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("see [the guide](missing.md) and [the site](https://example.org)\n")
    targets = [t for t in LINK.findall(page.read_text()) if not re.match(r"[a-z]+:", t)]
    assert targets == ["missing.md"] and not (tmp_path / targets[0]).exists()


def test_the_checkpoint_the_docs_measured_is_identified_where_a_copy_is_there():
    """No weights are tracked; CHECKPOINTS.md keeps the sha256 of the one the docs measured, which
    a copy at its path must match."""
    table = (ROOT / "benchmarks" / "results" / "CHECKPOINTS.md").read_text()
    rows = re.findall(r"\| `([^`]+\.pt)` \|.*`([0-9a-f]{64})`", table)
    assert rows, "CHECKPOINTS.md identifies no checkpoint"
    for relative, digest in rows:
        path = ROOT / "benchmarks" / "results" / relative
        if path.is_file():
            assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, relative


@pytest.mark.parametrize(("required", "outcome"), [("", "skipped"), ("1", "errors")])
def test_a_test_on_missing_shared_data_skips_here_and_fails_where_required(pytester, monkeypatch, required, outcome):
    pytester.makeconftest((ROOT / "tests" / "conftest.py").read_text())
    pytester.makepyfile("def test_reads_the_data(magnetic_tile):\n    assert magnetic_tile.is_dir()\n")
    monkeypatch.setenv("EDGESEG_SHARED", str(pytester.path / "no-shared-here"))
    monkeypatch.setenv("EDGESEG_REQUIRE_SHARED", required)
    result = pytester.runpytest_subprocess("-rs")
    result.assert_outcomes(**{outcome: 1})
    result.stdout.fnmatch_lines(["*magnetic-tile data set is missing*"])


def test_an_error_line_is_cut_at_a_word_without_terminal_colours():
    from edgeseg.errors import first_line

    long = ValueError("\x1b[1mfirst\x1b[0m " + "word " * 100 + "\nsecond line")
    line = first_line(long, limit=40)
    assert line.startswith("first word ") and line.endswith(" …") and len(line) <= 42
    assert set(line.removesuffix(" …").split()) == {"first", "word"}  # whole words only
    assert first_line(KeyError()) == "KeyError"


def test_every_benchmark_run_has_a_run_record_and_is_in_the_index():
    index = (ROOT / "docs" / "benchmarks.md").read_text()
    results = ROOT / "benchmarks" / "results"
    runs = sorted({path.parent for path in results.rglob("*.json")  # not a run's work folder (untracked)
                   if "run" not in path.relative_to(results).parts[:-1]})
    assert runs
    for run in runs:
        relative = run.relative_to(ROOT).as_posix()
        assert (run / "run.json").is_file(), f"{relative} has no run.json"
        assert f"../{relative}/run.json" in index, f"{relative} is not in docs/benchmarks.md"


def test_the_readme_stays_a_front_page():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 300


def _tracked_files() -> list[Path]:
    import subprocess

    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout: the tracked tree cannot be listed")
    return [ROOT / name for name in listed.stdout.split("\0") if name and (ROOT / name).is_file()]


def test_the_repository_stays_light():
    files = _tracked_files()
    assert sum(path.stat().st_size for path in files) < 10 * 2**20
    weights = [path.relative_to(ROOT).as_posix() for path in files
               if path.suffix in (".pt", ".pth", ".ckpt", ".bin", ".onnx", ".xml", ".plan", ".engine")]
    assert weights == [], "model weights are tracked (the repository carries results, never weights)"


def test_every_benchmark_script_ends_bad_input_with_a_one_line_error():
    """Each script's entry point goes through common.run_main (edgeseg's error, exit 2), not a
    bare main() that would print a traceback for a missing checkpoint or data set."""
    bare = []
    for path in sorted((ROOT / "benchmarks").glob("*.py")):
        text = path.read_text()
        if 'if __name__ == "__main__":' in text and "run_main(main)" not in text.split('if __name__ == "__main__":')[1]:
            bare.append(path.name)
    assert bare == []


@pytest.mark.parametrize(("script", "args"), [("compare_magnetic_tile.py", ["--checkpoint"]),
                                               ("runtime_magnetic_tile.py", ["--loop-only", "--checkpoint"])])
def test_a_benchmark_given_no_checkpoint_stops_with_one_line(script, args, tmp_path):
    import subprocess
    import sys

    missing = tmp_path / "gone.pt"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args, str(missing),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "no checkpoint here" in done.stderr
    assert not (tmp_path / "out").exists()
