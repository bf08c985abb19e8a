"""Write the small skvae 0.1.0 (format version 1) files of this folder and their outputs.

Run with skvae 0.1.0 (commit f855892) first on the path, from any directory::

    mkdir /tmp/v010 && git archive f855892 skvae | tar -x -C /tmp/v010
    PYTHONPATH=/tmp/v010 python tests/data/make_v010_fixtures.py tests/data
"""

import sys
from pathlib import Path

import numpy as np
import torch

import skvae

torch.set_num_threads(1)

assert skvae.__version__ == "0.1.0", skvae.__file__
out = Path(sys.argv[1])
X, _ = skvae.make_beta_curves(120, n_points=12, random_state=0)
Xf, _ = skvae.make_beta_curves(120, n_points=12, random_state=1, as_frame=True)
small = dict(hidden_layer_sizes=(6,), max_iter=3, batch_size=32, random_state=0)
vae = skvae.BetaCurveVAE(**small).fit(X)
fixed = skvae.BetaCurveVAE(**small, noise=0.1, early_stopping=True, activation="tanh").fit(Xf)
matcher = skvae.LatentMatcher(vae, prefit=True, n_starts=2, random_state=0).fit(X)
unfitted = skvae.BetaCurveVAE(latent_dims=3, hidden_layer_sizes=[5, 4])
for name, est in [
    ("vae", vae),
    ("fixed_noise", fixed),
    ("matcher", matcher),
    ("unfitted", unfitted),
]:
    skvae.save(est, out / f"v010_{name}.skvae")
Xt = X[:5]
Z = vae.transform(Xt)
np.savez(
    out / "v010_expected.npz",
    X=Xt,
    vae_transform=Z,
    vae_inverse_transform=vae.inverse_transform(Z),
    vae_score_samples=vae.score_samples(Xt),
    fixed_transform=fixed.transform(Xf.to_numpy()[:5]),
    fixed_X=Xf.to_numpy()[:5],
    matcher_transform=matcher.transform(Xt),
    vae_exp_avg_0=vae._state.optimizer.state_dict()["state"][0]["exp_avg"].numpy(),
    vae_exp_avg_sq_10=vae._state.optimizer.state_dict()["state"][10]["exp_avg_sq"].numpy(),
    vae_generator_state=vae._generator_state.numpy(),
    vae_partial_fit_loss=np.array(skvae.load(out / "v010_vae.skvae").partial_fit(X).loss_curve_),
)
print({p.name: p.stat().st_size for p in out.iterdir()})
