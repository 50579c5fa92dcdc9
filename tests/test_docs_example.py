"""The example family of docs/gan.md is real: its file and YAML, as printed, train one batch through the CLI."""

from __future__ import annotations

import re
import sys

from conftest import CONFIGS, REPO

from gan_lab.__main__ import main


def test_docs_example_family_trains(tmp_path, monkeypatch, data_dir):
    """The Python and YAML blocks under 'Writing a new family' run as a family (fast_dev_run, real MNIST subset)."""
    text = (REPO / "docs" / "gan.md").read_text().split("### Writing a new family", 1)[1]
    python, yaml_text = re.findall(r"```(?:python|yaml)\n(.*?)```", text, re.S)[:2]
    (tmp_path / "lsgan_example.py").write_text(python)
    for fragment in ("nets", "optim", "data"):
        (tmp_path / fragment).symlink_to(CONFIGS / fragment)
    (tmp_path / "gan").mkdir()
    family = tmp_path / "gan" / "lsgan.yaml"
    family.write_text(yaml_text.replace("gan_lab.lsgan.LSGAN", "lsgan_example.LSGAN"))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    args = [f"--config={CONFIGS / 'base.yaml'}", f"--config={family}", f"--config={CONFIGS / 'tiny.yaml'}"]
    extra = ["--data.init_args.subset=64", "--data.init_args.val_size=32", "--trainer.fast_dev_run=true"]
    main(["fit", *args, *extra, f"--run.root={tmp_path / 'runs'}"])
    assert list((tmp_path / "runs").rglob("samples/epoch=000.png")), "the example family drew no samples"
    sys.modules.pop("lsgan_example", None)
