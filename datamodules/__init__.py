"""LightningDataModules of the suite: palindromes, MNIST, Gaussian mixtures, Stacked MNIST (data location:
``lab.paths.default_data_dir``)."""
