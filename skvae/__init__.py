"""skvae: scikit-learn compatible variational autoencoders for families of curves."""

from ._vae import BetaCurveVAE
from .datasets import make_beta_curves

__version__ = "0.1.0"

__all__ = ["BetaCurveVAE", "make_beta_curves", "__version__"]
