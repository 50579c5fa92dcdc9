"""Baseline row of the palindrome tables: what a predictor that never reads the sequence scores on the same test
split as every trained run (the training split's most frequent last digit, about 10%: the task has no shortcut,
the target is the first digit and nothing after it)."""

from __future__ import annotations

from typing import Any

import torch

from datamodules.palindrome import NUM_DIGITS, PalindromeDataModule


def majority_accuracy(seq_len: int, num_samples: int, seed: int) -> dict[str, float]:
    """Validation and test accuracy of always answering the training split's most frequent target digit."""
    data = PalindromeDataModule(seq_len=seq_len, num_samples=num_samples, seed=seed)
    data.setup()
    guess = torch.bincount(data.train_set.tensors[1], minlength=NUM_DIGITS).argmax()
    return {split: float((dataset.tensors[1] == guess).float().mean())
            for split, dataset in (("val", data.val_set), ("test", data.test_set))}  # fmt: skip


def palindrome_baselines(seeds: list[int], seq_len: int = 100, num_samples: int = 100_000,
                         data_seed: int = 0) -> list[dict[str, Any]]:  # fmt: skip
    """One row, ``{"label", "runs": [{"test/best_acc": ..., "val/acc": ...}]}``: the majority digit on the runs' data
    (``data_seed``: every run of the study reads the same palindromes), so one deterministic entry whatever the
    ``seeds``; its test accuracy for the study, its validation accuracy for the tuning table."""
    accuracy = majority_accuracy(seq_len, num_samples, data_seed)
    return [{"label": f"majority digit of the training split, never reading the input (L = {seq_len})",
             "runs": [{"test/best_acc": accuracy["test"], "val/acc": accuracy["val"]}]}]  # fmt: skip
