"""Matching: inverting curves to latent codes.

:class:`~skvae.LatentMatcher` (the estimator), the match problem its searches share,
the batched Nelder-Mead engine, and the Laplace approximation with Gauss-Newton polish.
"""
