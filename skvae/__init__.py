"""skvae: scikit-learn compatible variational autoencoders for families of curves."""

from ._imputer import CurveImputer
from ._matching.matcher import LatentMatcher
from ._persistence import load, save
from ._vae import BetaCurveVAE
from .datasets import make_beta_curves

__version__ = "0.2.0"

__all__ = [
    "BetaCurveVAE",
    "CurveImputer",
    "LatentMatcher",
    "make_beta_curves",
    "save",
    "load",
    "__version__",
]
