"""The command reference (docs/cli.md), made from the parser itself so it cannot drift from
``--help``: ``python -m edgeseg.cli.reference docs/cli.md`` rewrites the part between the markers,
and a test fails when the page is out of date."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

START = "<!-- cli-reference:start: python -m edgeseg.cli.reference docs/cli.md writes this part -->"
END = "<!-- cli-reference:end -->"
WIDTH = 100  # argparse wraps help at the terminal's width; the reference is made at a fixed one


def render() -> str:
    from edgeseg.cli import build_parser

    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(WIDTH)
    try:
        parser = build_parser()
        parts = ["```text", parser.format_help().rstrip(), "```"]
        for name, command in _commands(parser):
            parts += ["", f"#### `{name}`", "", "```text", command.format_help().rstrip(), "```"]
    finally:
        if previous is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = previous
    return "\n".join(parts)


def _commands(parser: argparse.ArgumentParser):
    """(name, parser) of every command and subcommand, depth first."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                yield command.prog, command
                yield from _commands(command)


def current(readme_text: str) -> str:
    """The reference as the page has it now (between the markers)."""
    start, end = readme_text.index(START) + len(START), readme_text.index(END)
    return readme_text[start:end].strip("\n")


def write(readme: Path) -> bool:
    """Rewrite the page's reference; True if it changed."""
    text = readme.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{readme}: no {START} ... {END} markers")
    start, end = text.index(START) + len(START), text.index(END)
    updated = text[:start] + "\n" + render() + "\n" + text[end:]
    readme.write_text(updated)
    return updated != text


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/cli.md")
    print(f"{path}: {'updated' if write(path) else 'already up to date'}")
