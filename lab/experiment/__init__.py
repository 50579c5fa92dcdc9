"""Experiments as data: one YAML per experiment under ``experiments/``, run on Ray, every number from run records.

- ``spec``: reads and checks an experiment YAML and expands it into runs (variant x seed), each an ordinary ``fit``
  command line of the lab the experiment names.
- ``records``: the run record (one small JSON per run): config, seed, code version, packages, host, wall time, status,
  final and best metrics, checkpoint and image paths; the reuse key and the stale mark.
- ``launch``: ``python -m lab experiment run``: an embedded Ray instance (or a cluster by address) runs the runs that
  have no finished record, resuming interrupted ones from their last checkpoint.
- ``table``: ``python -m lab experiment table``: the experiment's table (mean, 95% interval, n, published rows, stale
  marks) as markdown and CSV, read from records only.
"""
