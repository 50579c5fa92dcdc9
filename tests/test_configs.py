"""Every YAML under configs/ composes with base.yaml and tiny.yaml into a model and a datamodule (no training), and
every image family satisfies the image-generator protocol. Seconds, not minutes: nothing is fitted."""

from __future__ import annotations

import pytest
import yaml
from conftest import CONFIGS

from gan_lab.__main__ import build as build_gan
from lab.protocol import ImageGenerator
from rnn_lab.__main__ import build as build_rnn


def mixture_families(folder) -> dict[str, list]:
    """Family name -> its config files: ``<base>.yaml``, then ``<base>.<variant>.yaml`` for a variant; the data
    configs of the folder (no ``model``, no dot: ring, grid) are left out."""
    found = {}
    for path in sorted(folder.glob("*.yaml")):
        if "model" not in (yaml.safe_load(path.read_text()) or {}) and "." not in path.stem:
            continue
        base = path.stem.split(".")[0]
        found[path.stem] = [folder / f"{base}.yaml", *([path] if path.stem != base else [])]
    return found


def compositions() -> dict[str, list]:
    """Config name -> the files composed for it, base first and tiny last; covers every YAML under configs/."""
    base, tiny = CONFIGS / "base.yaml", CONFIGS / "tiny.yaml"
    out = {f"gan/{p.stem}": [base, p, tiny] for p in sorted((CONFIGS / "gan").glob("*.yaml"))}
    for name, files in mixture_families(CONFIGS / "stacked").items():  # <family>.<variant>.yaml after <family>.yaml
        out[f"stacked/{name}"] = [base, *files, tiny]
        out[f"stacked/{name}+cpu"] = [base, *files, CONFIGS / "stacked" / "cpu.yaml", tiny]  # the CPU budget, last
    out |= {f"rnn/{p.stem}": [base, p, tiny] for p in sorted((CONFIGS / "rnn").glob("*.yaml"))}
    gan = CONFIGS / "gan" / "gan.yaml"
    out |= {f"ablations/{p.stem}": [base, gan, p, tiny] for p in sorted((CONFIGS / "ablations").glob("*.yaml"))}
    timed = CONFIGS / "peers" / "timed.yaml"  # the quality-per-minute budgets, after each peer's recipe
    out |= {f"peers/{p.stem}": [base, p, timed, tiny] for p in sorted((CONFIGS / "peers").glob("*.yaml")) if p != timed}
    for data in ("ring", "grid"):
        for name, files in mixture_families(CONFIGS / "mixtures").items():
            out[f"mixtures/{data}+{name}"] = [base, CONFIGS / "mixtures" / f"{data}.yaml", *files, tiny]
    return out


COMPOSITIONS = compositions()


def test_every_yaml_is_composed():
    """No YAML under configs/ is left out of the compositions below (fragments are used by some config)."""
    used = {path for files in COMPOSITIONS.values() for path in files}
    fragments = {p for p in CONFIGS.rglob("*.yaml") if p not in used}
    tools = [*(CONFIGS.parent / "tools").glob("*.py"), *(CONFIGS.parent / "bench").glob("*.py")]
    referenced = " ".join(p.read_text() for p in [*used, *tools])  # a tool's candidate config counts as used
    orphans = [str(p.relative_to(CONFIGS)) for p in fragments if str(p.relative_to(CONFIGS.parent)) not in referenced
               and p.name not in referenced]  # fmt: skip
    assert not orphans, f"configs that no composition or config uses: {orphans}"


@pytest.mark.parametrize("name", sorted(COMPOSITIONS))
def test_config_builds_model_and_data(name, tmp_path, data_dir):
    """The config parses, links and instantiates; image families are ImageGenerators with a family name."""
    build = build_rnn if name.startswith("rnn/") else build_gan
    args = [f"--config={path}" for path in COMPOSITIONS[name]] + [f"--run.root={tmp_path}"]
    cli = build(args)
    assert cli.model is not None and cli.datamodule is not None
    if not name.startswith("rnn/"):
        assert isinstance(cli.model, ImageGenerator), f"{name} does not satisfy the image-generator protocol"
        assert cli.model.family and cli.model.latent_dim >= 1
