"""Start-up of a command-line run without the cyclic garbage collector.

Importing Lightning (with torchmetrics, torchvision, ``torch._dynamo`` and scipy) and building the CLI's parser and
classes creates about 480,000 long-lived objects; the collector's full passes over them during start-up take about
1 s of a run on one CPU core, and its later passes keep scanning them while the run trains. The entry points
(``python -m gan_lab``, ``python -m rnn_lab``) call ``pause_gc`` first; ``resume_gc``, once the run's classes exist,
collects once, moves every object alive then to the permanent generation (``gc.freeze``: modules, classes, the
parsed config, the nets; they live as long as the process) and restarts the collector, which from then on scans only
what training creates. Without a ``pause_gc`` (a run started in-process: tests, the experiment runner's workers),
``resume_gc`` does nothing.
"""

from __future__ import annotations

import gc

_paused = False


def pause_gc() -> None:
    """Stops the cyclic collector until ``resume_gc`` (a no-op when it is stopped already)."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume_gc() -> None:
    """After a ``pause_gc``: one full collection, everything alive frozen, the collector restarted."""
    global _paused
    if not _paused:
        return
    _paused = False
    gc.collect()
    gc.freeze()
    gc.enable()
