"""Real curve data sets, bundled in installable wheels, and the error measured on them.

Tecator (near-infrared absorbance spectra of meat, 215 × 100), ItalyPowerDemand (daily power
demand, 1,096 × 24) and GunPoint (hand positions, 200 × 150) are UCR archive files shipped
inside the sktime wheel and read with its loaders; El Niño (monthly sea surface temperatures,
61 years × 12 months) ships inside statsmodels. Nothing is downloaded. sktime and statsmodels
are a benchmarks extra (``pip install skvae[benchmarks]``), never a dependency of skvae.

Protocol: every curve of a set (the archive's train and test files pooled), shuffled with a
fixed seed, :data:`TRAIN_FRACTION` to train and the rest held out; the error of a
reconstruction is the median over held-out curves of ``‖x̂ − x‖ / ‖x − training mean‖``
(:func:`relative_l2`): 1 is the error of predicting the mean curve, 0 is exact.
"""

from __future__ import annotations

import warnings

import numpy as np

#: The sets in table order: name -> what the curves are.
REAL_SETS = {
    "tecator": "Tecator NIR spectra of meat (sktime)",
    "italy_power": "ItalyPowerDemand daily load (sktime)",
    "gunpoint": "GunPoint hand positions (sktime)",
    "elnino": "El Niño monthly sea temperatures (statsmodels)",
}
#: The seed of the shuffle that splits every set (the same split for every fit).
SPLIT_SEED = 0
TRAIN_FRACTION = 0.75


def load_real(name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """All curves of a set (train and test files pooled) as float64 rows, and the target
    the archive gives with them (Tecator: fat content in %; a class label for the UCR
    classification sets; None for El Niño).

    Raises ``ModuleNotFoundError`` when the package that ships the set is not installed.
    """
    if name == "elnino":
        from statsmodels.datasets import elnino

        data = elnino.load_pandas().data
        return data.drop(columns="YEAR").to_numpy(dtype=np.float64), None
    from sktime.datasets import load_gunpoint, load_italy_power_demand, load_tecator

    loaders = {
        "tecator": load_tecator,
        "italy_power": load_italy_power_demand,
        "gunpoint": load_gunpoint,
    }
    if name not in loaders:
        raise ValueError(f"Unknown real set {name!r}; expected one of {sorted(REAL_SETS)}.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sktime's deprecation notices about its loaders
        X, y = loaders[name](return_type="numpy2D")
    return np.asarray(X, dtype=np.float64), np.asarray(y)


def split(n: int, seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the training and held-out curves of a set of ``n`` curves.

    Examples
    --------
    >>> train, test = split(8)
    >>> len(train), len(test), sorted([*train, *test]) == list(range(8))
    (6, 2, True)
    """
    order = np.random.default_rng(seed).permutation(n)
    n_train = int(round(TRAIN_FRACTION * n))
    return order[:n_train], order[n_train:]


def real_split(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The training and held-out curves of a set (:func:`load_real`, :func:`split`)."""
    X, _ = load_real(name)
    train, test = split(len(X))
    return X[train], X[test]


def relative_l2_per_curve(X: np.ndarray, X_hat: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """``‖x̂ − x‖ / ‖x − mean‖`` of each curve (``mean``: the training mean curve; inf
    where the reconstruction is not finite).

    Examples
    --------
    >>> X = np.array([[1.0, 0.0], [0.0, 2.0]])
    >>> relative_l2_per_curve(X, 0.5 * X, mean=np.zeros(2))
    array([0.5, 0.5])
    """
    X_hat = np.asarray(X_hat, dtype=np.float64)
    errors = np.linalg.norm(X_hat - X, axis=1) / np.linalg.norm(X - mean, axis=1)
    return np.where(np.isfinite(errors), errors, np.inf)


def relative_l2(X: np.ndarray, X_hat: np.ndarray, mean: np.ndarray) -> float:
    """Median over curves of :func:`relative_l2_per_curve`.

    Examples
    --------
    >>> X = np.array([[1.0, 0.0], [0.0, 2.0]])
    >>> relative_l2(X, X, mean=np.zeros(2)), relative_l2(X, 0 * X, mean=np.zeros(2))
    (0.0, 1.0)
    """
    return float(np.median(relative_l2_per_curve(X, X_hat, mean)))
