"""The house has one direction: core <- datamodules <- callbacks <- gan_lab / rnn_lab <- tools, bench.

Read from the source (every import statement, top level or inside a function), so a lazy import cannot hide a
wrong-way dependency; and importing the core registers nothing.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# package -> the packages of ours it may import (itself included)
ALLOWED = {
    "lab": {"lab"},
    "datamodules": {"lab", "datamodules"},
    "callbacks": {"lab", "datamodules", "callbacks"},
    "gan_lab": {"lab", "datamodules", "callbacks", "gan_lab"},
    "rnn_lab": {"lab", "datamodules", "callbacks", "rnn_lab"},
}
OURS = {*ALLOWED, "tools", "bench"}


def imported_packages(path: Path) -> set[str]:
    """Top-level names of every module imported anywhere in ``path``."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_no_package_imports_a_higher_layer():
    """No file in lab/, datamodules/ or callbacks/ imports gan_lab or rnn_lab; rnn_lab never imports gan_lab."""
    wrong = []
    for package, allowed in ALLOWED.items():
        for path in sorted((REPO / package).rglob("*.py")):
            bad = (imported_packages(path) & OURS) - allowed
            if bad:
                wrong.append(f"{path.relative_to(REPO)} imports {sorted(bad)}")
    assert not wrong, "\n".join(wrong)


def test_the_layer_check_catches_a_wrong_way_import(tmp_path):
    """The check itself works: a function-level import of gan_lab is found."""
    sample = tmp_path / "lazy.py"
    sample.write_text("def f():\n    from gan_lab.module import GANModule\n    return GANModule\n")
    assert "gan_lab" in imported_packages(sample)


def test_importing_the_core_has_no_side_effects():
    """Importing the core's errors registers no DDP strategy and loads no package of ours but the core."""
    code = (
        "import sys\nimport lab.errors, lab.experiment.launch, lab.metrics.functional\n"
        "from pytorch_lightning.strategies import StrategyRegistry\n"
        "print('gan_ddp' in StrategyRegistry, sorted({m.split('.')[0] for m in sys.modules} & "
        "{'gan_lab', 'rnn_lab', 'callbacks', 'datamodules'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True).stdout
    assert out.split() == ["False", "[]"]


def test_no_module_is_much_over_300_lines():
    """Short files, one concept each (a little slack over 300 for docstrings)."""
    long = [
        f"{path.relative_to(REPO)}: {n}"
        for package in (*ALLOWED, "tools")
        for path in (REPO / package).rglob("*.py")
        if (n := len(path.read_text().splitlines())) > 330
    ]
    assert not long, long
