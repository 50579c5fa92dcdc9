"""The subcommands a lab offers, one line each: what ``python -m gan_lab`` prints with none and above ``--help``."""

from __future__ import annotations

import sys

from lab.errors import fail

# Lightning's subcommands that the suite offers (predict is not: the labs' own commands write samples or reports)
LIGHTNING_COMMANDS = {
    "fit": "train a model into <run.root>/<family>-<variant>-s<seed>/version_N (--ckpt_path last|best resumes)",
    "validate": "metrics of a checkpoint (--ckpt_path) on the validation split",
    "test": "metrics of a checkpoint (--ckpt_path) on the test split",
}


def usage(prog: str, descriptions: dict[str, str]) -> str:
    """Every subcommand with its one line: what ``prog`` prints with no subcommand (exit 2) and above ``--help``."""
    width = max(map(len, descriptions)) + 2
    lines = [f"usage: {prog} <command> [options]   ({prog} <command> --help for its options)"]
    return "\n".join(lines + [f"  {name:<{width}}{text}" for name, text in descriptions.items()])


def offer(argv: list[str], prog: str, descriptions: dict[str, str], predict_hint: str = "") -> None:
    """No subcommand: the list on stderr, exit 2. ``--help``: the list, then the parser's help. ``predict``: one
    line saying it is not offered and what to run instead."""
    listing = usage(prog, descriptions)
    if not argv:
        print(listing, file=sys.stderr)
        raise SystemExit(2)
    if argv[0] in ("-h", "--help"):
        print(listing + "\n")
    if argv[0] == "predict":
        hint = f" ({predict_hint})" if predict_hint else ""
        fail(f"{prog} predict is not offered; the commands are {', '.join(descriptions)}{hint}")
