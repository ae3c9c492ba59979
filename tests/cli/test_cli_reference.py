"""The README's command reference is the parser's own --help, for every command."""

from pathlib import Path

from edgeseg.cli.reference import current, render

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_command_reference_matches_every_commands_help():
    assert current(README.read_text()) == render(), (
        "the README's command reference is out of date: run python -m edgeseg.cli.reference README.md")


def test_the_reference_covers_every_command_and_subcommand():
    reference = render()
    for command in ("data", "data check", "data synth", "models", "train", "export", "compile", "info", "verify",
                    "run", "bench", "demo"):
        assert f"#### `edgeseg {command}`" in reference
        assert f"usage: edgeseg {command} " in reference or f"usage: edgeseg {command}\n" in reference
