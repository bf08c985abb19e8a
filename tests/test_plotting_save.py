"""``save_figures``: every Display saved to files, at the Displays' own sizes, pyplot's
state left alone."""

import matplotlib.pyplot as plt
import pytest

from skvae.plotting import (
    LatentSpaceDisplay,
    LatentTraversalDisplay,
    ReconstructionDisplay,
    TrainingHistoryDisplay,
    save_figures,
)

#: Every test closes its pyplot figures (``close_figures`` in conftest.py).
pytestmark = pytest.mark.usefixtures("close_figures")


def test_save_figures_writes_five_files(fitted_vae, matcher, curves, tmp_path):
    X = curves[1]
    before = plt.get_fignums()
    paths = save_figures(
        fitted_vae, X, tmp_path / "figs", matcher=matcher, n_targets=2, pdf=True, n_traversal=4
    )
    names = ["data", "training_history", "latent_space", "reconstruction", "latent_traversal"]
    assert [p.name for p in paths] == [f"{name}.png" for name in names]
    for path in paths:
        assert path.parent == tmp_path / "figs"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plt.get_fignums() == before  # pyplot's state is left alone


@pytest.mark.parametrize("which", ["1d", "3d"])
def test_save_figures_uses_the_displays_own_figure_sizes(which, vae_1d, vae_3d, small_curves):
    """Each saved figure has the size its Display picks with ax=None (no second copy of
    the sizing rules in save_figures)."""
    import tempfile

    from PIL import Image

    vae = vae_1d if which == "1d" else vae_3d
    dpi = 20
    with tempfile.TemporaryDirectory() as folder:
        paths = save_figures(vae, small_curves, folder, n_traversal=4, n_targets=3, dpi=dpi)
        sizes = {p.stem: Image.open(p).size for p in paths}
    expected = {
        "training_history": TrainingHistoryDisplay.from_estimator(vae),
        "latent_space": LatentSpaceDisplay.from_estimator(vae, small_curves),
        "reconstruction": ReconstructionDisplay.from_estimator(vae, small_curves[:3]),
        "latent_traversal": LatentTraversalDisplay.from_estimator(vae, n=4),
    }
    for name, display in expected.items():
        width, height = display.figure_.get_size_inches() * dpi
        assert sizes[name] == (round(width), round(height)), name


def test_save_figures_other_format_and_dims(vae_3d, small_curves, tmp_path):
    paths = save_figures(vae_3d, small_curves, tmp_path, format="svg", n_traversal=3)
    assert all(p.suffix == ".svg" and p.stat().st_size > 0 for p in paths)


def test_save_figures_bad_inputs(fitted_vae, curves, tmp_path):
    with pytest.raises(ValueError, match="n_targets"):
        save_figures(fitted_vae, curves[1], tmp_path, n_targets=0)
    with pytest.raises(ValueError, match="2-D"):
        save_figures(fitted_vae, curves[1][0], tmp_path)
