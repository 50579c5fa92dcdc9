"""Callbacks of the suite: when to compute and where to publish (the maths lives in ``lab.metrics``). They read a
module only through its protocol (``latent_dim``, ``sample(n)``, ...; ``lab.protocol.ImageGenerator``)."""
