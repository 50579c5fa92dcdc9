"""One ``fit`` of the gan_lab CLI in a process that torchrun started: ``torchrun ... tests/torchrun_fit.py OUT ARGS``.

Builds and fits the run as ``python -m gan_lab fit ARGS`` does, then writes ``OUT/rank<RANK>.json``: the hash of the
module's weights, the world size and the strategy Lightning chose from torchrun's environment.
"""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ddp_worker import state_hash  # noqa: E402

from gan_lab.__main__ import build  # noqa: E402

if __name__ == "__main__":
    out, args = Path(sys.argv[1]), sys.argv[2:]
    cli = build(args)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    report = {"hash": state_hash(cli.model), "world_size": cli.trainer.world_size,
              "strategy": type(cli.trainer.strategy).__name__, "global_step": cli.trainer.global_step}  # fmt: skip
    (out / f"rank{os.environ['RANK']}.json").write_text(json.dumps(report))
