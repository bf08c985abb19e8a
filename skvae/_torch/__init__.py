"""The pure-torch core: networks and the ELBO, the training loop, the training step.

Nothing here imports scikit-learn, numpy-side helpers or dask: the estimator converts its
inputs to tensors and its outputs back (a test keeps these imports so).
"""
