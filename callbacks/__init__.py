"""Callbacks of the suite. They read a module only through its protocol (``latent_dim``, ``sample(n)``, ...)."""
