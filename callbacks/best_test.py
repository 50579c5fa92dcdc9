"""TestAtBestValidation: at the end of fit, the test accuracy of the checkpoint with the best validation accuracy.

The palindrome protocol's reported number (docs/rnn.md): every run trains for its stated budget, the checkpoint that
the run's ``ModelCheckpoint`` kept as best on its monitored metric is restored, and its accuracy on the test split
(never seen in training or model choice) is logged as ``test/best_acc`` at the step it was saved (``test/best_step``)
into the run's loggers (``metrics.csv``, W&B), beside the final weights' ``test/final_acc``. The module's own weights
are put back afterwards.
"""

from __future__ import annotations

import re

import torch
from pytorch_lightning import Callback, LightningModule, Trainer


def accuracy(module: LightningModule, loader, datamodule=None) -> float:
    """Share of the loader's samples whose argmax logit is the label (module in eval mode, no gradients); batches go
    through the datamodule's ``on_after_batch_transfer`` as in the fit loop."""
    was_training = module.training
    module.eval()
    right = total = 0
    with torch.no_grad():
        for batch in loader:
            batch = [t.to(module.device) for t in batch]
            if datamodule is not None:
                batch = datamodule.on_after_batch_transfer(batch, 0)
            x, y = batch
            logits = module(x)  # (B, C)
            right += int((logits.argmax(dim=1) == y.to(module.device)).sum())
            total += len(y)
    module.train(was_training)
    return right / max(total, 1)


class TestAtBestValidation(Callback):
    """Logs ``test/final_acc``, ``test/best_acc`` and ``test/best_step`` when fit ends (rank zero's view)."""

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        datamodule = trainer.datamodule
        if datamodule is None or trainer.sanity_checking:
            return
        loader = datamodule.test_dataloader()
        scores = {"test/final_acc": accuracy(pl_module, loader, datamodule)}
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        if best:
            state = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
            checkpoint = torch.load(best, map_location=pl_module.device, weights_only=True)
            pl_module.load_state_dict(checkpoint["state_dict"])
            scores["test/best_acc"] = accuracy(pl_module, loader, datamodule)
            scores["test/best_step"] = float(checkpoint.get("global_step", _step_in_name(best)))
            pl_module.load_state_dict(state)
        else:  # no checkpoint kept (checkpointing off): the final weights are the best known
            scores["test/best_acc"], scores["test/best_step"] = scores["test/final_acc"], float(trainer.global_step)
        for logger in trainer.loggers:
            logger.log_metrics(scores, step=trainer.global_step)
            logger.save()


def _step_in_name(path: str) -> int:
    found = re.search(r"step=(\d+)", path)
    return int(found.group(1)) if found else -1
