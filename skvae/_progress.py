"""Progress reporting for long fits, following scikit-learn's ``verbose`` levels."""

from __future__ import annotations

from collections.abc import Callable


def make_progress_callback(
    verbose: int, n_epochs: int, first_epoch: int = 0, log_scale: float = 0.0
):
    """Return ``(on_epoch, close)`` for a training run of ``n_epochs`` epochs.

    ``verbose=0`` reports nothing; ``1`` shows a tqdm progress bar when tqdm is installed
    (otherwise about ten lines over the run); ``2`` or more prints one line per epoch.
    ``on_epoch`` receives the training state after each epoch. The state's losses are in the
    scaled space; ``log_scale`` (log of the estimator's ``scale_``) shifts them to the data
    units of ``loss_curve_`` and ``validation_scores_``, so the printed numbers match those.
    """
    if not verbose:
        return None, lambda: None

    def describe(state) -> str:
        text = (
            f"loss={state.loss[-1] + log_scale:.5f} "
            f"recon={state.reconstruction[-1] + log_scale:.5f} kl={state.kl[-1]:.5f}"
        )
        if len(state.validation) == state.epoch:  # this epoch was validated
            text += f" val={state.validation[-1] - log_scale:.5f}"
        return text

    if verbose == 1:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            tqdm = None
        if tqdm is not None:
            bar = tqdm(total=n_epochs, desc="BetaCurveVAE", unit="epoch", leave=False)

            def on_bar(state) -> None:
                bar.update(1)
                bar.set_postfix_str(describe(state), refresh=False)

            return on_bar, bar.close
    every = 1 if verbose > 1 else max(1, n_epochs // 10)

    def on_line(state) -> None:
        done = state.epoch - first_epoch
        if done % every == 0 or done == n_epochs:
            print(f"Epoch {state.epoch}, {describe(state)}", flush=True)

    close: Callable[[], None] = lambda: None  # noqa: E731
    return on_line, close
