"""scikit-learn's own estimator checks, on the estimators as users construct them."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skvae import BetaCurveVAE, CurveImputer


@parametrize_with_checks([BetaCurveVAE(), CurveImputer()])
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
