"""Input errors meant for the user as they are, the one-line ``error: <cause>`` exit, and small input checks."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

# Errors that mean "the input is wrong", raised by constructors while a CLI builds its objects.
INPUT_ERRORS = (ValueError, TypeError, FileNotFoundError, NotADirectoryError, KeyError)


class LabError(ValueError):
    """An input error with a message meant for the user as it is (one line, no traceback)."""


class DivergenceError(RuntimeError):
    """Training produced a NaN/Inf loss or gradient; the message names the step, the quantity and a checkpoint."""


def fail(message: str, code: int = 2) -> NoReturn:
    """Prints ``error: message`` as one line on stderr and exits with ``code``."""
    one_line = " ".join(str(message).split())
    sys.stderr.write(f"error: {one_line}\n")
    sys.exit(code)


def root_cause(err: BaseException) -> BaseException:
    """The innermost ``__cause__`` of ``err``: the error a constructor raised, under the config parser's wrappers."""
    seen = {id(err)}
    while err.__cause__ is not None and id(err.__cause__) not in seen:
        err = err.__cause__
        seen.add(id(err))
    return err


def cause_text(err: BaseException) -> str:
    """The user-facing text of an input error: the root cause's message, without the exception's type."""
    cause = root_cause(err)
    if isinstance(cause, KeyError) and cause.args:
        return str(cause.args[0])
    return str(cause) or type(cause).__name__


def one_of(name: str, value: Any, options: Sequence[Any]) -> Any:
    """``value`` when it is one of ``options``; else a ValueError that lists them."""
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(str, options))}, got {value!r}")
    return value


def check_optimizer(factory: Callable[..., Any], name: str) -> None:
    """Builds the optimizer once on a dummy parameter so a bad setting (lr <= 0, betas outside [0, 1)) fails now."""
    import torch

    try:
        optimizer = factory([torch.nn.Parameter(torch.zeros(1))])
    except (ValueError, TypeError) as err:
        raise ValueError(f"{name}: {err}") from None
    lr = optimizer.param_groups[0].get("lr")
    if isinstance(lr, int | float) and lr <= 0:
        raise ValueError(f"{name}: learning rate must be > 0, got {lr}")


def check_output_folder(path: str | os.PathLike, flag: str) -> Path:
    """``path`` as a folder that exists (missing parents created) and takes new files; else LabError naming
    ``flag``: a file where the folder must be, a folder that cannot be created, or one that refuses a file (a
    read-only or special file system: a probe file is created there and removed at once)."""
    import tempfile

    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise LabError(f"{flag} {path}: is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as err:
        raise LabError(f"{flag} {path}: cannot write there ({err.strerror or err})") from None
    return folder


def check_output_path(path: str | os.PathLike, suffixes: Sequence[str]) -> Path:
    """Returns ``path`` as a Path after checking its suffix is one of ``suffixes``, that it is not a folder, and
    that its folder exists (created with its parents when missing) and takes new files."""
    out = Path(path)
    if out.suffix not in suffixes:
        raise LabError(f"output {out} must end with one of {', '.join(suffixes)}")
    if out.is_dir():
        raise LabError(f"output {out} is a folder: name a file ending with one of {', '.join(suffixes)}")
    check_output_folder(out.parent, "output folder")
    return out
