"""The command reference (docs/cli.md) is the parser's own --help, for every command."""

from pathlib import Path

from edgeseg.cli.reference import current, render

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_the_command_reference_matches_every_commands_help():
    assert current(REFERENCE.read_text()) == render(), (
        "docs/cli.md is out of date: run python -m edgeseg.cli.reference docs/cli.md")


def test_the_reference_covers_every_command_and_subcommand():
    reference = render()
    for command in ("data", "data check", "data synth", "models", "train", "export", "compile", "info", "verify",
                    "run", "bench", "demo"):
        assert f"#### `edgeseg {command}`" in reference
        assert f"usage: edgeseg {command} " in reference or f"usage: edgeseg {command}\n" in reference
