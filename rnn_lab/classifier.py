"""SequenceClassifier: digits (embedded or one-hot) -> recurrent cell -> linear head on the last hidden state."""

from __future__ import annotations

import ctypes
from typing import Any, Literal

import torch
from pytorch_lightning import LightningModule
from pytorch_lightning.cli import OptimizerCallable
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy

from lab.errors import check_optimizer
from rnn_lab.cells import gate_biases, lstm_unrolled, make_cell, recurrent_weights
from rnn_lab.inits import chrono_bias_


def keep_freed_memory(keep: bool) -> None:
    """glibc's allocator: with ``keep``, large blocks come from the heap instead of ``mmap`` and freed memory is not
    returned to the system (``mallopt`` M_MMAP_MAX 0, M_TRIM_THRESHOLD 1 GiB), so a training step reuses the pages of
    the last one; else glibc's defaults (65,536 maps, 128 KiB) and the heap's free pages returned to the system. A
    no-op where the C library is not glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-4, 0 if keep else 65536)  # M_MMAP_MAX
        libc.mallopt(-1, 2**30 if keep else 128 * 1024)  # M_TRIM_THRESHOLD
        if not keep:
            libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


class SequenceClassifier(LightningModule):
    """Predicts a class from a sequence with the last hidden state of a recurrent cell.

    Args:
        cell: ``rnn``, ``lstm`` or ``gru``.
        implementation: ``manual`` (hand-written cells of rnn_lab.cells) or ``torch`` (nn.RNN/nn.LSTM/nn.GRU).
        hidden_dim: hidden units of the cell.
        one_hot: inputs arrive as one-hot floats (B, T, num_classes); else as int64 digits (B, T), embedded here.
            Linked from the data module's ``one_hot`` by the CLI.
        embedding_dim: size of the digit embedding when ``one_hot`` is false.
        num_classes: digits in the alphabet and classes of the head.
        forget_bias: initial forget-gate bias of an LSTM (unless ``chrono_t_max`` is set).
        recurrent_init: ``orthogonal`` (default: each gate's block of the recurrent weight orthogonal), ``default``
            (torch's uniform init) or ``identity``; see rnn_lab.cells.make_cell. Orthogonal is the default because the
            sweep measured it better for every cell (docs/rnn.md, init ablation).
        nonlinearity: the vanilla RNN's activation, ``tanh`` or ``relu`` (``relu`` + ``identity``: the IRNN).
        chrono_t_max: chrono initialisation of the LSTM's / GRU's gate biases for dependencies up to this many steps
            (Tallec and Ollivier 2018); ``seq_len``: up to the data's sequence length (T_max = L, drawn once the data
            module is known); None keeps ``forget_bias`` (LSTM) and torch's biases.
        optimizer: the optimizer, chosen by ``class_path`` in YAML (default Adam, lr 1e-3).
    """

    def __init__(
        self,
        cell: str = "lstm",
        implementation: str = "torch",
        hidden_dim: int = 128,
        one_hot: bool = True,
        embedding_dim: int = 16,
        num_classes: int = 10,
        forget_bias: float = 1.0,
        recurrent_init: str = "orthogonal",
        nonlinearity: str = "tanh",
        chrono_t_max: int | Literal["seq_len"] | None = None,
        optimizer: OptimizerCallable = torch.optim.Adam,
    ) -> None:
        super().__init__()
        if num_classes < 2 or embedding_dim < 1:
            raise ValueError(f"num_classes must be >= 2 and embedding_dim >= 1; got {num_classes}, {embedding_dim}")
        self.save_hyperparameters(ignore=["optimizer"])
        self.cell_name, self.implementation, self.one_hot = cell, implementation, one_hot
        self.optimizer_factory = optimizer
        check_optimizer(optimizer, "optimizer")
        self.embedding = None if one_hot else nn.Embedding(num_classes, embedding_dim)
        input_size = num_classes if one_hot else embedding_dim
        self.chrono_from_data = chrono_t_max == "seq_len"
        if self.chrono_from_data and cell == "rnn":
            raise ValueError("chrono_t_max needs a gated cell (lstm, gru); the rnn cell has no gate biases")
        self.cell = make_cell(cell, implementation, input_size, hidden_dim, forget_bias, recurrent_init, nonlinearity,
                              None if self.chrono_from_data else chrono_t_max)  # fmt: skip
        self.head = nn.Linear(hidden_dim, num_classes)
        self.accuracy = nn.ModuleDict(
            {stage: MulticlassAccuracy(num_classes, average="micro") for stage in ("train_", "val_", "test_")}
        )  # keys get a suffix: ModuleDict refuses names like "train" that clash with Module attributes

    checkpoint_monitor = ("val/acc", "max")  # the best checkpoint is the most accurate on validation

    def setup(self, stage: str) -> None:
        """The CPU settings of a recurrent net, while the trainer runs this module (bench/rnn_cpu.py measures both).

        - Denormals flush to zero. A gradient that vanishes through hundreds of steps turns denormal (below 1.2e-38
          in float32), and x86 computes with denormals many times slower (GRU and vanilla-RNN steps at L = 300 took
          5-8x longer at torch's init). Values that small move no weight (Adam divides by at least its eps, 1e-8).
        - Freed memory stays in the heap (``keep_freed_memory``): activations of long sequences exceed glibc's
          largest mmap threshold, so each step would map them afresh and fault every page in again (an LSTM step at
          L = 300: 68,000 page faults, 1.3-1.7x its time).
        """
        torch.set_flush_denormal(True)
        keep_freed_memory(True)

    def teardown(self, stage: str) -> None:
        torch.set_flush_denormal(False)  # the process's defaults again (other work in it keeps them)
        keep_freed_memory(False)

    def check_datamodule(self, datamodule: Any) -> None:
        """With ``chrono_t_max: seq_len``, draws the chrono biases for the data's length (T_max = L)."""
        if self.chrono_from_data:
            chrono_bias_(self.cell_name, *gate_biases(self.cell), self.hparams.hidden_dim, max(3, datamodule.seq_len))

    @property
    def family(self) -> str:
        """Run-name family (``lstm``, ``rnn``, ``gru``), used by the CLI for run names and W&B groups."""
        return self.cell_name

    def embed(self, x: Tensor) -> Tensor:
        """Digits (B, T) int64, or one-hot floats (B, T, C) when ``one_hot`` -> cell inputs (B, T, I)."""
        if self.embedding is not None:
            return self.embedding(x)
        if x.is_floating_point():
            return x
        return nn.functional.one_hot(x, self.hparams.num_classes).float()  # (B, T, C)

    def forward(self, x: Tensor) -> Tensor:
        outputs, _ = self.cell(self.embed(x))  # (B, T, H)
        return self.head(outputs[:, -1])  # (B, C)

    def unrolled_forward(self, x: Tensor) -> tuple[Tensor, dict[str, list[Tensor]]]:
        """The logits and every state as a graph node, for gradient probes (callbacks.gradient_flow's protocol):
        ``{"h_t": [T tensors]}``, and for the LSTM also ``"c_t"``, so ``torch.autograd.grad(loss, states)`` gives
        ∂L/∂h_t (and ∂L/∂c_t) through every path.

        RNN and GRU: the cell runs one step at a time and each h_t (1, B, H) is the tensor the next step reads. LSTM:
        unrolled in plain ops from the cell's own weights (rnn_lab.cells.lstm_unrolled, either implementation), so
        c_t (B, H) is the node that h_t = o_t ⊙ tanh(c_t) and c_{t+1} read.
        """
        inputs = self.embed(x)  # (B, T, I)
        if self.cell_name == "lstm":
            hs, cs = lstm_unrolled(inputs, recurrent_weights(self.cell))  # T tensors (B, H) each
            return self.head(hs[-1]), {"h_t": hs, "c_t": cs}
        state, states = None, []
        for t in range(inputs.shape[1]):
            _, state = self.cell(inputs[:, t : t + 1], state)  # (1, B, H): the node the next step reads
            states.append(state)
        return self.head(states[-1][0]), {"h_t": states}

    def _step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        x, y = batch
        logits = self(x)
        loss = nn.functional.cross_entropy(logits, y)
        accuracy = self.accuracy[stage + "_"]
        accuracy(logits, y)
        on_step = stage == "train"
        self.log(f"{stage}/loss", loss, on_step=on_step, on_epoch=not on_step, prog_bar=stage != "train")
        self.log(f"{stage}/acc", accuracy, on_step=on_step, on_epoch=not on_step, prog_bar=True)
        return loss

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer_factory(self.parameters())
