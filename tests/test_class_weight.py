"""Class weights (fastlr._labels): scikit-learn's class_weight semantics, with sample weights, in one place."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression as SklearnLogisticRegression
from sklearn.utils.class_weight import compute_class_weight

from fastlr import LogisticRegression
from fastlr._labels import per_class_weights, sample_class_weights
from reference import assert_fits_agree

TIGHT = dict(tol=1e-10, max_iter=10_000)
# what fastlr's fits are checked against: 1e-10 is asked (scikit-learn's fits use it), but
# float64 rounding of F can stop L-BFGS a little above it on some CPUs (a ConvergenceWarning)
REACHED = 1e-8


def _problem(n, d, k, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.argmax(X @ rng.standard_normal((d, k)) + rng.gumbel(size=(n, k)), axis=1)
    return X, y


def _repeat(X, y, counts):
    return np.repeat(X, counts, axis=0), np.repeat(y, counts)


def _effective_weights(class_weight, y, sw):
    """scikit-learn's per-sample weights: class weight (balanced counts sample weights) x sw."""
    classes = np.unique(y)
    sw = np.ones(len(y)) if sw is None else np.asarray(sw, dtype=float)
    if class_weight is None:
        return sw
    if class_weight != "balanced":
        class_weight = {c: class_weight.get(c, 1.0) for c in classes}
    per_class = compute_class_weight(class_weight, classes=classes, y=y, sample_weight=sw)
    return per_class[np.searchsorted(classes, y)] * sw


def _assert_same_fit(a, b, X, y, class_weight=None, sw=None, sklearn_b=False):
    """``a`` and ``b`` minimise the same F: agree to what their gradients allow (any CPU)."""
    np.testing.assert_array_equal(a.classes_, b.classes_)
    assert_fits_agree(a, b, X, y, sample_weight=_effective_weights(class_weight, y, sw),
                      tol=REACHED, tol_b=1e-7 if sklearn_b else REACHED)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("k", [2, 3])
def test_balanced_weights_count_sample_weights_like_sklearn(seed, k):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, 40)
    y[:k] = np.arange(k)
    sw = rng.uniform(0, 4, 40)
    classes = np.arange(k)
    ours = per_class_weights("balanced", classes, np.bincount(y, minlength=k),
                             np.bincount(y, weights=sw, minlength=k))
    np.testing.assert_allclose(ours, compute_class_weight("balanced", classes=classes, y=y,
                                                          sample_weight=sw), rtol=1e-14)


def test_issue_example_balanced_with_sample_weight_equals_repeated_rows_and_sklearn():
    X = np.arange(6.0).reshape(-1, 1)
    y = np.array([0, 0, 0, 1, 1, 1])
    sw = np.array([1, 1, 1, 1, 1, 3])
    model = LogisticRegression(class_weight="balanced", **TIGHT).fit(X, y, sample_weight=sw)
    repeated = LogisticRegression(class_weight="balanced", **TIGHT).fit(*_repeat(X, y, sw))
    ref = SklearnLogisticRegression(class_weight="balanced", **TIGHT).fit(X, y, sample_weight=sw)
    _assert_same_fit(model, repeated, X, y, "balanced", sw)
    _assert_same_fit(model, ref, X, y, "balanced", sw, sklearn_b=True)
    # the weights changed the answer: balanced-without-sample-weights is a different model
    plain = LogisticRegression(class_weight="balanced", **TIGHT).fit(X, y)
    assert abs(plain.intercept_[0] - model.intercept_[0]) > 0.1


@pytest.mark.parametrize("class_weight", ["balanced", {0: 3.0, 2: 0.5}, {"b": 2.0}],
                         ids=["balanced", "dict", "dict-one-class"])
@pytest.mark.parametrize("k, seed", [(2, 4), (3, 5)])
def test_integer_sample_weights_equal_repeated_rows_whatever_class_weight(class_weight, k, seed):
    X, y = _problem(60, 3, k, seed)
    if isinstance(class_weight, dict) and "b" in class_weight:
        y = np.array(list("abc"))[y]
    elif isinstance(class_weight, dict) and k == 2:
        class_weight = {0: 3.0}
    counts = np.random.default_rng(seed).integers(0, 4, len(y))
    counts[:10] = 1  # every class keeps a row
    model = LogisticRegression(class_weight=class_weight, C=0.7, **TIGHT).fit(X, y, sample_weight=counts)
    repeated = LogisticRegression(class_weight=class_weight, C=0.7, **TIGHT).fit(*_repeat(X, y, counts))
    _assert_same_fit(model, repeated, X, y, class_weight, counts)
    ref = SklearnLogisticRegression(class_weight=class_weight, C=0.7, **TIGHT).fit(X, y, sample_weight=counts)
    _assert_same_fit(model, ref, X, y, class_weight, counts, sklearn_b=True)


def test_sample_class_weights_is_class_weight_times_sample_weight():
    codes = np.array([0, 1, 1, 2, 2, 2])
    sw = np.array([1.0, 2.0, 0.0, 1.0, 1.0, 4.0])
    out = sample_class_weights("balanced", np.array([10, 20, 30]), codes, sw)
    totals = np.array([1.0, 2.0, 6.0])
    np.testing.assert_allclose(out, (9.0 / (3 * totals))[codes] * sw, rtol=1e-15)
    assert sample_class_weights(None, np.array([0, 1]), codes[:2], None) is None


@pytest.mark.parametrize("labels, class_weight, unknown", [
    (["a", "a", "b", "b"], {"a": 1, "B": 10}, "'B'"),
    ([3, 3, 7, 7], {3: 1.0, 8: 4.0}, "8"),
    ([0, 1, 2, 0, 1, 2], {"1": 2.0}, "'1'"),          # a string key for integer labels
])
def test_class_weight_keys_matching_no_class_are_an_error(labels, class_weight, unknown):
    X = np.arange(len(labels), dtype=float).reshape(-1, 1)
    with pytest.raises(ValueError, match="match no class") as info:
        LogisticRegression(class_weight=class_weight).fit(X, np.array(labels))
    assert unknown in str(info.value)
    with pytest.raises(ValueError):  # scikit-learn refuses it too
        SklearnLogisticRegression(class_weight=class_weight).fit(X, np.array(labels))


def test_class_weight_keys_of_numpy_types_match_and_extra_keys_with_all_classes_named_pass():
    X, y = _problem(50, 2, 3, 8)
    a = LogisticRegression(class_weight={np.int64(0): 2.0, 1: 1.0, 2.0: 0.5}, **TIGHT).fit(X, y)
    b = LogisticRegression(**TIGHT).fit(X, y, sample_weight=np.array([2.0, 1.0, 0.5])[y])
    # the same per-sample weights reach the same kernels: the same arithmetic (any CPU)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-12, atol=1e-12)
    _assert_same_fit(a, b, X, y, sw=np.array([2.0, 1.0, 0.5])[y])
    # every class named, plus a class the data lacks: accepted, as in scikit-learn
    c = LogisticRegression(class_weight={0: 2.0, 1: 1.0, 2: 0.5, 9: 3.0}, **TIGHT).fit(X, y)
    np.testing.assert_allclose(c.coef_, b.coef_, rtol=1e-12, atol=1e-12)


def test_partial_fit_checks_class_weight_keys_too():
    X, y = _problem(40, 2, 2, 9)
    with pytest.raises(ValueError, match="match no class"):
        LogisticRegression(class_weight={0: 1.0, 5: 2.0}).partial_fit(X, y, classes=[0, 1])
