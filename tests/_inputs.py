"""Tables of bad and good inputs shared by the input-validation tests of both estimators."""

import numpy as np
import pandas as pd
import scipy.sparse as sp


def with_value(X, index, value):
    """A float copy of ``X`` with ``X[index] = value``."""
    X = np.array(X, dtype=float)
    X[index] = value
    return X


def read_only(X):
    """A read-only copy of ``X``."""
    X = X.copy()
    X.setflags(write=False)
    return X


# (id, make bad X from good float64 X, exception, message pattern)
BAD_X = [
    ("inf", lambda X: with_value(X, (1, 0), np.inf), ValueError, "infinity"),
    ("-inf", lambda X: with_value(X, (1, 0), -np.inf), ValueError, "infinity"),
    ("1-D", lambda X: X[0], ValueError, "Expected 2D array, got 1D array"),
    ("3-D", lambda X: X[:, :, None], ValueError, "dim 3"),
    ("scalar", lambda X: 3.0, ValueError, "Expected 2D array, got scalar"),
    ("None", lambda X: None, ValueError, "Expected 2D array, got scalar"),
    ("no rows", lambda X: X[:0], ValueError, r"0 sample\(s\)"),
    ("no columns", lambda X: X[:, :0], ValueError, r"0 feature\(s\)"),
    ("ragged", lambda X: [list(X[0]), list(X[1][:-1])], ValueError, "inhomogeneous"),
    ("words", lambda X: np.full(X.shape, "abc"), ValueError, "could not convert string"),
    ("complex", lambda X: X + 1j, ValueError, "Complex data not supported"),
    ("complex, zero imaginary", lambda X: X.astype(complex), ValueError, "Complex data"),
    ("sparse csr", lambda X: sp.csr_matrix(X), TypeError, "Sparse data"),
    ("sparse csc", lambda X: sp.csc_array(X), TypeError, "Sparse data"),
    ("too large for float32", lambda X: X * 1e300, ValueError, "too large in magnitude"),
]

# (id, make an equivalent input, make the float64 array it must equal exactly)
GOOD_X = [
    ("float64", lambda X: X, lambda X: X),
    ("float32", lambda X: X.astype(np.float32), lambda X: X.astype(np.float32).astype(float)),
    ("int64", lambda X: np.round(X * 10).astype(np.int64), lambda X: np.round(X * 10)),
    ("int8", lambda X: np.clip(np.round(X), -100, 100).astype(np.int8), None),
    ("bool", lambda X: X > 0, lambda X: (X > 0).astype(float)),
    ("float16", lambda X: X.astype(np.float16), lambda X: X.astype(np.float16).astype(float)),
    ("Fortran-ordered", np.asfortranarray, lambda X: X),
    ("non-contiguous", lambda X: np.repeat(X, 2, axis=1)[:, ::2], lambda X: X),
    ("read-only", lambda X: read_only(X), lambda X: X),
    ("list", lambda X: X.tolist(), lambda X: X),
    ("tuple of tuples", lambda X: tuple(map(tuple, X)), lambda X: X),
    ("object", lambda X: X.astype(object), lambda X: X),
    ("numeric strings", lambda X: X.astype(str), lambda X: X),
    ("DataFrame", pd.DataFrame, lambda X: X),
    ("one sample", lambda X: X[:1], lambda X: X[:1]),
    ("constant columns", lambda X: with_value(X, (slice(None), slice(0, 10)), 2.0), None),
    ("huge 1e30", lambda X: X * 1e30, None),
    ("tiny 1e-30", lambda X: X * 1e-30, None),
    ("missing points", lambda X: with_value(X, (0, slice(2, 9)), np.nan), None),
]

BAD_Z = [
    ("nan", np.array([[np.nan, 0.0]]), ValueError, "NaN"),
    ("inf", np.array([[0.0, np.inf]]), ValueError, "infinity"),
    ("wrong width", np.zeros((2, 3)), ValueError, r"3 features.*latent codes with 2"),
    ("1-D", np.zeros(2), ValueError, "Expected 2D array, got 1D array"),
    ("3-D", np.zeros((1, 2, 1)), ValueError, "dim 3"),
    ("no rows", np.zeros((0, 2)), ValueError, r"0 sample\(s\)"),
    ("no columns", np.zeros((2, 0)), ValueError, r"0 feature\(s\)"),
    ("words", np.array([["a", "b"]]), ValueError, "could not convert string"),
    ("complex", np.ones((2, 2)) + 1j, ValueError, "Complex data not supported"),
    ("sparse", sp.csr_matrix(np.ones((2, 2))), TypeError, "Sparse data"),
    ("too large for float32", np.full((1, 2), 1e300), ValueError, "too large in magnitude"),
]

FIT_BAD = [c for c in BAD_X if c[0] not in {"too large for float32"}] + [
    ("overflowing mean", lambda X: np.full((20, 5), 1.7e308), ValueError, "too large in magnitude"),
    (
        "curve with no observed point",
        lambda X: with_value(X, (1, slice(None)), np.nan),
        ValueError,
        r"1 curve\(s\) with no observed point.*rows \[1\]",
    ),
    (
        "grid point never observed",
        lambda X: with_value(X, (slice(None), 4), np.nan),
        ValueError,
        r"no observed value.*columns \[4\]",
    ),
]
