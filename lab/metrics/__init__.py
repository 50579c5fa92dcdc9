"""Metrics: ``functional`` (pure maths on tensors), ``backbones`` (feature networks), ``image`` (torchmetrics
classes). Callbacks decide when to compute them and publish; ``evaluate`` calls the same functions."""
