"""Contracts of the estimator core: warnings point at the caller, parameters, scaling,
the convergence rule and the matcher-facing LatentModel."""

import ast
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from _helpers import TINY_NET
from sklearn.exceptions import ConvergenceWarning

import skvae
from skvae import BetaCurveVAE
from skvae._torch import loop as _training


def test_convergence_warning_points_at_the_callers_line(X):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        BetaCurveVAE(max_iter=3, **TINY_NET).fit(X)
    [warning] = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert warning.filename == __file__


def test_interrupt_warning_points_at_the_caller_and_counts_this_calls_epochs(X, monkeypatch):
    vae = BetaCurveVAE(max_iter=4, warm_start=True, **TINY_NET)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae.fit(X)
    real, calls = _training.run_epoch, {"n": 0}

    def run_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(_training, "run_epoch", run_epoch)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vae.fit(X)
    [warning] = [w for w in caught if "interrupted" in str(w.message)]
    assert "after 2 epochs" in str(warning.message)  # not the 6 run over both fits
    assert warning.filename == __file__
    assert vae.n_iter_ == 6


def test_convergence_warning_only_while_still_improving(X):
    """Stopped at max_iter with the loss still falling: warn. A loss flat over the last
    n_iter_no_change epochs (within tol): no warning, even at max_iter."""
    # judged on the training loss; without a hold-out, whose score could stop the fit first
    params = {**TINY_NET, "early_stopping": False}
    with pytest.warns(ConvergenceWarning, match="still improving"):
        BetaCurveVAE(max_iter=5, n_iter_no_change=2, tol=1e-3, **params).fit(X)
    vae = BetaCurveVAE(max_iter=5, n_iter_no_change=2, tol=1e6, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vae.fit(X)  # tol so large that nothing counts as improvement: converged
    assert vae.n_iter_ == 4  # the stall rule waits for 80 % of the cosine schedule
    assert _training.still_improving([3.0, 2.0, 1.0], 1, 0.5)
    assert not _training.still_improving([3.0, 2.0, 1.9, 1.95], 2, 0.5)
    assert _training.still_improving([3.0], 2, 0.5)  # too short to tell: improving
    assert not _training.still_improving([1.0, 2.0, 2.05], 1, 0.1, higher_is_better=True)


@pytest.mark.parametrize("name", ["latent_dims", "max_iter", "batch_size", "n_iter_no_change"])
def test_boolean_integers_are_rejected(X, name):
    vae = BetaCurveVAE(**{**TINY_NET, name: True})
    with pytest.raises(ValueError, match=f"{name} must be an integer"):
        vae.fit(X)
    assert not hasattr(vae, "n_features_in_")


def test_latent_model_contract(fitted_vae, curves):
    X = curves[1][:7]
    model = fitted_vae.latent_model()
    assert (model.latent_dims, model.n_features, model.device) == (2, 100, torch.device("cpu"))
    mean, std = model.encode(X)
    refined = model.refine(X, mean, fitted_vae.refine_steps)
    np.testing.assert_array_equal(refined, fitted_vae.transform(X))
    np.testing.assert_array_equal(model.refine(X, mean, 0), mean)
    assert np.all(std > 0)
    np.testing.assert_array_equal(model.decode(mean), fitted_vae.inverse_transform(mean))
    np.testing.assert_allclose(model.scaler.model_to_data(model.scaler.data_to_model(X)), X)
    assert model.noise == fitted_vae.noise_
    assert "_DEVICE" not in str(vars(fitted_vae))  # inference caches nothing on the estimator


def test_kl_curve_is_per_curve_in_nats(fitted_vae):
    # the loss is per grid point: reconstruction + KL / n_features (kl_weight 1)
    loss = np.array(fitted_vae.loss_curve_)
    recon = np.array(fitted_vae.reconstruction_curve_)
    kl = np.array(fitted_vae.kl_curve_)
    np.testing.assert_allclose(loss, recon + kl / fitted_vae.n_features_in_, rtol=1e-9)
    assert kl[-1] > 1.0  # two informative latent dimensions carry several nats


@pytest.mark.parametrize("name", ["noise", "kl_weight", "learning_rate_init", "tol", "decay_rate"])
def test_boolean_reals_are_rejected(X, name):
    vae = BetaCurveVAE(**{**TINY_NET, name: True})
    with pytest.raises(ValueError, match=f"{name} must be a real number, got the boolean"):
        vae.fit(X)
    assert not hasattr(vae, "n_features_in_")


# ------------------------------------------------------------------ the package's imports

PACKAGE = Path(skvae.__file__).parent


def _imports(path: Path) -> set[str]:
    """Absolute names of the modules that ``path`` imports (relative imports resolved)."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    package = package.removesuffix(".__init__")
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module
            names.add(prefix)
            # ``from . import x`` may name a submodule
            names.update(f"{prefix}.{alias.name}" for alias in node.names)
    return names


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_torch_core_imports_only_the_standard_library_torch_and_itself():
    allowed = ("torch", "skvae._torch", "skvae._warnings")
    for path in sorted((PACKAGE / "_torch").glob("*.py")):
        for name in _imports(path):
            top = name.partition(".")[0]
            ok = top in sys.stdlib_module_names or top == "__future__"
            ok = ok or any(name == a or name.startswith(a + ".") for a in allowed)
            assert ok, f"{path.name} imports {name}"


def test_package_modules_import_no_cycle():
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {
        name: {m for m in _imports(path) if m in paths and m != name}
        for name, path in paths.items()
    }
    # a package's __init__ importing its own submodules is not a cycle of modules
    for name in graph:
        graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}
    visiting, done = [], set()

    def visit(name):
        if name in done:
            return
        assert name not in visiting, "import cycle: " + " -> ".join(
            visiting[visiting.index(name) :] + [name]
        )
        visiting.append(name)
        for other in sorted(graph[name]):
            visit(other)
        visiting.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)
