"""scikit-learn's own estimator checks, on the estimators as users construct them."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skvae import BetaCurveVAE, CurveImputer, LatentMatcher


@parametrize_with_checks([BetaCurveVAE(), LatentMatcher(), CurveImputer()])
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
