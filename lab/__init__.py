"""The shared core of the suite: errors and input checks, the LightningCLI base, run naming and loggers,
checkpoint reading, the multi-run runner, the report, and the metrics maths.

It imports nothing of ours (``datamodules``, ``callbacks``, ``gan_lab`` and ``rnn_lab`` build on it; a test checks
the direction), and importing any of it has no side effects.
"""
