"""The palindrome data: correct samples, reproducible, disjoint train/validation/test splits, clear errors."""

import pytest
import torch

from datamodules.palindrome import PalindromeDataModule, distinct_palindromes, palindrome_splits


def _full(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.cat([x.long(), y.unsqueeze(1)], dim=1)


@pytest.mark.parametrize("seq_len", [2, 3, 5, 6, 19, 20, 41])
def test_samples_are_palindromes_with_first_digit_as_target(seq_len):
    """Input + target reads the same both ways, the target is the first digit, shapes are (N, L-1) and (N,)."""
    (x, y), (xv, yv) = palindrome_splits(seq_len, 3000, 0.8, seed=1)
    assert x.shape == (2400, seq_len - 1) and y.shape == (2400,) and xv.shape == (600, seq_len - 1)
    for inputs, target in ((x, y), (xv, yv)):
        full = _full(inputs, target)
        assert torch.equal(full, full.flip(1))
        assert torch.equal(target, inputs[:, 0].long())
        assert int(full.min()) >= 0 and int(full.max()) <= 9


@pytest.mark.parametrize("seq_len", [9, 10])
def test_targets_are_uniform_for_odd_and_even_lengths(seq_len):
    """Every digit is a target about 10% of the time, whatever the parity of the length."""
    (_, y), _ = palindrome_splits(seq_len, 50_000, 0.8, seed=0)
    share = torch.bincount(y, minlength=10).float() / y.numel()
    assert torch.all((share - 0.1).abs() < 0.01)


def test_same_seed_same_data_other_seed_other_data():
    """The seed alone fixes the data."""
    a = palindrome_splits(20, 1000, 0.8, seed=3)
    b = palindrome_splits(20, 1000, 0.8, seed=3)
    c = palindrome_splits(20, 1000, 0.8, seed=4)
    assert torch.equal(a[0][0], b[0][0]) and torch.equal(a[1][0], b[1][0])
    assert not torch.equal(a[0][0], c[0][0])


@pytest.mark.parametrize(("seq_len", "num_samples"), [(20, 20_000), (8, 9_000), (6, 500), (6, 5_000), (5, 20_000)])
def test_train_and_validation_share_no_palindrome(seq_len, num_samples):
    """No palindrome is in both splits; below the number of distinct palindromes none repeats at all."""
    (x, _), (xv, _) = palindrome_splits(seq_len, num_samples, 0.8, seed=0)
    train = {tuple(row) for row in x.tolist()}
    val = {tuple(row) for row in xv.tolist()}
    assert not train & val
    if num_samples <= distinct_palindromes(seq_len):
        assert len(train) + len(val) == num_samples
    else:  # samples repeat: the distinct palindromes are split, each side drawn with replacement from its share
        assert 0.95 * distinct_palindromes(seq_len) <= len(train) + len(val) <= distinct_palindromes(seq_len)


def test_datamodule_batches_one_hot_and_digits():
    """Batches are (B, T, 10) one-hot floats, or (B, T) int64 digits, with int64 targets; validation is disjoint."""
    for one_hot in (True, False):
        data = PalindromeDataModule(seq_len=7, num_samples=1000, batch_size=32, one_hot=one_hot)
        data.setup("fit")
        x, y = data.on_after_batch_transfer(next(iter(data.train_dataloader())), 0)
        assert y.shape == (32,) and y.dtype == torch.int64
        if one_hot:
            assert x.shape == (32, 6, 10) and x.dtype == torch.float32 and torch.all(x.sum(-1) == 1)
        else:
            assert x.shape == (32, 6) and x.dtype == torch.int64
    assert len(data.train_set) == 800 and len(data.val_set) == 100 and len(data.test_set) == 100


@pytest.mark.parametrize(("seq_len", "num_samples"), [(20, 20_000), (6, 500), (6, 5_000), (3, 2_000)])
def test_train_validation_and_test_share_no_palindrome(seq_len, num_samples):
    """Three splits in the shares asked for (80/10/10), pairwise disjoint, with or without repeated samples."""
    splits = palindrome_splits(seq_len, num_samples, (0.8, 0.1, 0.1), seed=0)
    assert [len(y) for _, y in splits] == [round(0.8 * num_samples), round(0.1 * num_samples), round(0.1 * num_samples)]
    sets = [{tuple(row) for row in x.tolist()} for x, _ in splits]
    assert not sets[0] & sets[1] and not sets[0] & sets[2] and not sets[1] & sets[2]


def test_datamodule_test_loader_reads_the_test_split():
    """``test`` evaluates the held-out test palindromes, not the validation ones."""
    data = PalindromeDataModule(seq_len=20, num_samples=2000, batch_size=32, train_fraction=0.7, test_fraction=0.2)
    data.setup("test")
    x_test, _ = next(iter(data.test_dataloader()))
    x_val, _ = next(iter(data.val_dataloader()))
    assert len(data.test_set) == 400 and len(data.val_set) == 200 and x_test.shape[0] == 400
    assert not {tuple(r) for r in x_test.tolist()} & {tuple(r) for r in x_val.tolist()}


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"seq_len": 1}, "seq_len"),
        ({"num_samples": 0}, "num_samples"),
        ({"batch_size": -1}, "batch_size"),
        ({"train_fraction": 1.0}, "train_fraction"),
        ({"train_fraction": 0.0}, "train_fraction"),
        ({"num_samples": 1}, "empty"),
        ({"num_samples": 5}, "empty"),
        ({"test_fraction": 0.0}, "test_fraction"),
        ({"train_fraction": 0.8, "test_fraction": 0.2}, "test_fraction"),
    ],
)
def test_bad_sizes_are_rejected(kwargs, words):
    """Impossible sizes raise a ValueError that names the problem."""
    with pytest.raises(ValueError, match=words):
        PalindromeDataModule(**kwargs)
