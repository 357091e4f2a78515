"""deepcls.analysis.statistics against hand computations and published values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize, special, stats

from deepcls.analysis import statistics as st

# --- adjust -----------------------------------------------------------------------------------


def test_holm_by_hand() -> None:
    # Sorted: 0.005, 0.01, 0.03, 0.04 times m - i + 1 = 4, 3, 2, 1 -> 0.02, 0.03, 0.06, 0.04;
    # running maximum -> 0.02, 0.03, 0.06, 0.06; back in input order:
    adjusted = st.adjust([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02], rtol=1e-12)


def test_holm_caps_at_one() -> None:
    # 0.2 * 3 = 0.6, 0.4 * 2 = 0.8, 0.9 * 1 = 0.9 (no capping needed); 0.5 * 3 = 1.5 -> 1.
    np.testing.assert_allclose(st.adjust([0.4, 0.2, 0.9]), [0.8, 0.6, 0.9], rtol=1e-12)
    np.testing.assert_allclose(st.adjust([0.5, 0.6, 1.0]), [1.0, 1.0, 1.0])


def test_bh_by_hand() -> None:
    # Sorted: 0.001, 0.02, 0.025, 0.3 times m/i = 4, 2, 4/3, 1 -> 0.004, 0.04, 0.0333.., 0.3;
    # running minimum from the top -> 0.004, 0.0333.., 0.0333.., 0.3 (the step-up lowers 0.04).
    expected = [0.004, 0.1 / 3, 0.1 / 3, 0.3]
    np.testing.assert_allclose(st.adjust([0.001, 0.02, 0.025, 0.3], "fdr_bh"), expected, rtol=1e-12)
    np.testing.assert_allclose(st.adjust([0.025, 0.3, 0.001, 0.02], "bh"), [0.1 / 3, 0.3, 0.004, 0.1 / 3], rtol=1e-12)


def test_adjust_refuses_nan_and_unknown_method() -> None:
    with pytest.raises(ValueError, match="NaN"):
        st.adjust([0.01, math.nan])
    with pytest.raises(ValueError, match="method"):
        st.adjust([0.01], "bonferroni")
    with pytest.raises(ValueError):
        st.adjust([1.5])
    assert st.adjust([]).size == 0


# --- prediction interval ------------------------------------------------------------------------


def test_prediction_interval_by_hand() -> None:
    # mean 3, sd sqrt(2.5), n 5: half-width t_{0.975, 4} * sqrt(2.5) * sqrt(1 + 1/5) = 2.7764451 * sqrt(3).
    low, high = st.prediction_interval([1, 2, 3, 4, 5])
    half = 2.7764451052 * math.sqrt(3.0)
    assert low == pytest.approx(3 - half, abs=1e-8)
    assert high == pytest.approx(3 + half, abs=1e-8)


def test_prediction_interval_with_moderated_sd() -> None:
    # sd 2 on 10 df: t_{0.975, 10} = 2.2281389; at 90 %: t_{0.95, 10} = 1.8124611.
    low, high = st.prediction_interval([1, 2, 3, 4, 5], sd=2.0, df=10)
    assert high - 3 == pytest.approx(2.2281388520 * 2.0 * math.sqrt(1.2), abs=1e-8)
    assert 3 - low == pytest.approx(high - 3)
    low, high = st.prediction_interval([1, 2, 3, 4, 5], 0.90, sd=2.0, df=10)
    assert high - 3 == pytest.approx(1.8124611228 * 2.0 * math.sqrt(1.2), abs=1e-8)
    low, high = st.prediction_interval([2.0], sd=1.0, df=math.inf)
    assert high - 2 == pytest.approx(1.959963985 * math.sqrt(2.0), abs=1e-8)


def test_prediction_interval_needs_two_values_for_its_own_sd() -> None:
    with pytest.raises(ValueError):
        st.prediction_interval([1.0])
    with pytest.raises(ValueError):
        st.prediction_interval([1.0, math.nan])


# --- moderated variances ------------------------------------------------------------------------


def test_moderation_of_equal_variances_is_complete() -> None:
    posterior, posterior_df, s0_squared, d0 = st.moderated_variances([1.7] * 5, [3] * 5)
    assert d0 == math.inf
    assert s0_squared == pytest.approx(1.7)
    np.testing.assert_allclose(posterior, 1.7)
    np.testing.assert_allclose(posterior_df, 15.0)  # capped at the pooled df


def _fit_f_dist_by_hand(variances: np.ndarray, dfs: np.ndarray) -> tuple[float, float]:
    """limma's fitFDist written out independently: trigamma inverted with brentq instead of Newton."""
    e = np.log(variances) - special.digamma(dfs / 2) + np.log(dfs / 2)
    target = np.var(e, ddof=1) - np.mean(special.polygamma(1, dfs / 2))
    half_d0 = optimize.brentq(lambda y: special.polygamma(1, y) - target, 1e-6, 1e6, xtol=1e-14)
    d0 = 2 * half_d0
    return float(np.exp(np.mean(e) + special.digamma(half_d0) - np.log(half_d0))), d0


@pytest.mark.parametrize(
    ("variances", "dfs"),
    [([0.5, 1.0, 2.0, 4.0, 8.0], [3, 3, 3, 3, 3]), ([0.3, 1.1, 2.5, 0.9, 6.0, 1.4], [2, 3, 4, 5, 6, 9])],
)
def test_moderation_matches_fitfdist_by_hand(variances: list[float], dfs: list[float]) -> None:
    s2, d = np.array(variances), np.array(dfs, dtype=float)
    posterior, posterior_df, s0_squared, d0 = st.moderated_variances(s2, d)
    expected_s0, expected_d0 = _fit_f_dist_by_hand(s2, d)
    assert d0 == pytest.approx(expected_d0, rel=1e-7)
    assert s0_squared == pytest.approx(expected_s0, rel=1e-7)
    np.testing.assert_allclose(posterior, (d0 * s0_squared + d * s2) / (d0 + d), rtol=1e-12)
    np.testing.assert_allclose(posterior_df, np.minimum(d0 + d, d.sum()), rtol=1e-12)


def test_moderation_recovers_a_known_prior() -> None:
    # sigma^2 ~ s0^2 d0 / chi2_{d0} with s0^2 = 2, d0 = 8; s^2 = sigma^2 chi2_4 / 4.
    rng = np.random.default_rng(20240601)
    rows = 20_000
    sigma2 = 2.0 * 8 / rng.chisquare(8, rows)
    s2 = sigma2 * rng.chisquare(4, rows) / 4
    _, posterior_df, s0_squared, d0 = st.moderated_variances(s2, np.full(rows, 4.0))
    assert s0_squared == pytest.approx(2.0, rel=0.10)
    assert d0 == pytest.approx(8.0, rel=0.15)
    np.testing.assert_allclose(posterior_df, 4.0 + d0)


def test_posteriors_lie_between_sample_variance_and_prior() -> None:
    s2 = np.array([0.2, 0.9, 1.5, 3.0, 7.5, 0.6])
    posterior, _, s0_squared, d0 = st.moderated_variances(s2, [4] * 6)
    assert math.isfinite(d0)
    low, high = np.minimum(s2, s0_squared), np.maximum(s2, s0_squared)
    assert np.all((posterior > low) & (posterior < high))


def test_moderation_edge_rows() -> None:
    posterior, posterior_df, s0_squared, d0 = st.moderated_variances([0.5, 1.0, 2.0, 4.0, 8.0, 3.0], [3] * 5 + [0])
    assert posterior[-1] == pytest.approx(s0_squared)  # no data of its own: the prior
    assert posterior_df[-1] == pytest.approx(d0)
    with pytest.raises(ValueError, match="at least two"):
        st.moderated_variances([1.0, 0.0, 2.0], [3, 3, 0])
    with pytest.raises(ValueError):
        st.moderated_variances([1.0, 2.0], [3])


# --- seeds for power ----------------------------------------------------------------------------


def test_seeds_for_power_published() -> None:
    # Cohen (1988), Table 2.4.1: d = 0.5, two-sided alpha 0.05, power 0.8 -> 64 per group; d = 1 -> 17.
    assert st.seeds_for_power(0.5, 1.0) == 64
    assert st.seeds_for_power(2.0, 2.0) == 17
    # One-sample / paired: d = 0.5 -> 34 (G*Power), d = 0.8 -> 15.
    assert st.seeds_for_power(0.5, 1.0, samples=1) == 34
    assert st.seeds_for_power(0.8, 1.0, samples=1) == 15
    assert st.seeds_for_power(10.0, 1.0) == 2  # the floor


def _noncentral_t_power(n: int, effect: float, samples: int) -> float:
    """Two-sided t-test power written out with scipy's noncentral t, independently of statsmodels."""
    df = samples * (n - 1)
    crit = stats.t.ppf(0.975, df)
    noncentrality = effect * math.sqrt(n / samples)
    return stats.nct.sf(crit, df, noncentrality) + stats.nct.cdf(-crit, df, noncentrality)


@pytest.mark.parametrize("samples", [1, 2])
@pytest.mark.parametrize("effect", [0.3, 0.9, 1.4, 10.0])
def test_seeds_for_power_is_the_smallest_n_with_power(samples: int, effect: float) -> None:
    n = st.seeds_for_power(effect, 1.0, samples=samples)
    assert _noncentral_t_power(n, effect, samples) >= 0.8
    assert n == 2 or _noncentral_t_power(n - 1, effect, samples) < 0.8


def test_seeds_for_power_one_sample_is_ttestpower() -> None:
    from statsmodels.stats.power import TTestPower

    for effect in (0.3, 0.5, 0.9):
        expected = math.ceil(TTestPower().solve_power(effect_size=effect, alpha=0.05, power=0.8))
        assert st.seeds_for_power(effect, 1.0, samples=1) == expected
    # d = 10: power at n = 2 is only 0.73, where TTestPower's solver stops at its bound of 2.
    assert st.seeds_for_power(10.0, 1.0, samples=1) == 3


def test_seeds_for_power_refuses_bad_input() -> None:
    with pytest.raises(ValueError):
        st.seeds_for_power(0.0, 1.0)
    with pytest.raises(ValueError):
        st.seeds_for_power(1.0, 1.0, samples=3)


# --- seeds for equivalence ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "margin", "samples", "difference"), [(10, 1.0, 2, 0.0), (5, 1.0, 1, 0.3), (3, 2.0, 2, 0.0), (20, 0.5, 2, 0.1)]
)
def test_tost_power_matches_simulation(n: int, margin: float, samples: int, difference: float) -> None:
    rng = np.random.default_rng(7)
    sims = 200_000
    df = samples * (n - 1)
    k = math.sqrt(samples / n)
    estimate = rng.normal(difference, k, sims)
    s = np.sqrt(rng.chisquare(df, sims) / df)
    crit = stats.t.ppf(0.95, df)
    simulated = np.mean(((estimate + margin) / (s * k) > crit) & ((estimate - margin) / (s * k) < -crit))
    exact = st.tost_power(n, margin, 1.0, samples=samples, true_difference=difference)
    assert exact == pytest.approx(simulated, abs=4 * math.sqrt(0.25 / sims))


def test_seeds_for_equivalence_reaches_power_at_the_smallest_n() -> None:
    for samples, difference in ((2, 0.0), (1, 0.0), (2, 0.2)):
        n = st.seeds_for_equivalence(1.0, 1.0, samples=samples, true_difference=difference)
        kwargs = {"samples": samples, "true_difference": difference}
        assert st.tost_power(n, 1.0, 1.0, **kwargs) >= 0.8
        assert st.tost_power(n - 1, 1.0, 1.0, **kwargs) < 0.8


def test_seeds_for_equivalence_is_monotone() -> None:
    by_margin = [st.seeds_for_equivalence(m, 1.0) for m in (0.5, 0.8, 1.2, 2.0)]
    by_sd = [st.seeds_for_equivalence(1.0, s) for s in (0.5, 0.8, 1.2, 2.0)]
    assert by_margin == sorted(by_margin, reverse=True) and by_margin[0] > by_margin[-1]
    assert by_sd == sorted(by_sd) and by_sd[0] < by_sd[-1]
    assert st.seeds_for_equivalence(1.0, 1.0, true_difference=0.3) > st.seeds_for_equivalence(1.0, 1.0)


@pytest.mark.parametrize("samples", [1, 2])
def test_seeds_for_equivalence_agrees_with_normal_approximation(samples: int) -> None:
    # For difference 0: n = samples (z_{1-alpha} + z_{1-beta/2})^2 sd^2 / margin^2 (here ~500 or ~250);
    # t quantiles and an estimated sd add a seed or two (two for the one-sample test's fewer df).
    sd, margin = 5.4, 1.0
    normal = samples * (stats.norm.ppf(0.95) + stats.norm.ppf(0.9)) ** 2 * sd**2 / margin**2
    assert abs(st.seeds_for_equivalence(margin, sd, samples=samples) - math.ceil(normal)) <= 2


def test_seeds_for_equivalence_limits() -> None:
    with pytest.raises(ValueError, match="below the margin"):
        st.seeds_for_equivalence(1.0, 1.0, true_difference=1.0)
    with pytest.raises(ValueError, match="more than"):
        st.seeds_for_equivalence(0.01, 1.0)
    assert st.seeds_for_equivalence(20.0, 1.0) == 2


# --- group-sequential designs ---------------------------------------------------------------------


@pytest.mark.parametrize(("k", "constant"), [(1, 1.960), (2, 2.178), (4, 2.361), (5, 2.413)])
def test_pocock_boundaries_published(k: int, constant: float) -> None:
    # Pocock (1977); Jennison & Turnbull (2000), Table 2.1: two-sided alpha 0.05, equal spacing.
    np.testing.assert_allclose(st.boundaries(list(range(1, k + 1))), constant, atol=0.003)


def test_obrien_fleming_boundaries_published() -> None:
    # Jennison & Turnbull (2000), Table 2.3: K = 4, C = 2.024, c_k = C sqrt(4 / k).
    np.testing.assert_allclose(st.boundaries([1, 2, 3, 4], "obrien-fleming"), [4.048, 2.862, 2.337, 2.024], atol=0.003)
    np.testing.assert_allclose(st.boundaries([5], "obrien-fleming"), [1.960], atol=0.003)


def test_boundaries_depend_only_on_information_fractions() -> None:
    np.testing.assert_allclose(st.boundaries([3, 6, 9, 12]), st.boundaries([1, 2, 3, 4]), atol=1e-9)
    # One-sided alpha 0.025 ~ two-sided 0.05 (the two tails' overlap is negligible).
    np.testing.assert_allclose(st.boundaries([1, 2, 3, 4], alpha=0.025, two_sided=False), 2.361, atol=0.003)


def test_boundaries_refuse_bad_designs() -> None:
    with pytest.raises(ValueError):
        st.boundaries([2, 2, 3])
    with pytest.raises(ValueError):
        st.boundaries([1, 2], kind="haybittle")


def test_nominal_levels_pocock() -> None:
    np.testing.assert_allclose(st.nominal_levels([1, 2, 3, 4]), 0.0182, atol=0.0002)
    levels = st.nominal_levels([1, 2, 3, 4], "obrien-fleming")
    assert np.all(np.diff(levels) > 0)  # strict early, close to 0.05 at the end
    assert levels[-1] == pytest.approx(2 * stats.norm.sf(2.024), abs=2e-4)


@pytest.mark.parametrize("kind", ["pocock", "obrien-fleming"])
@pytest.mark.parametrize("look", [0, 2, 3])
def test_repeated_p_at_the_boundary_is_alpha(kind: str, look: int) -> None:
    looks = [4, 8, 12, 16]
    p = st.nominal_levels(looks, kind)[look]
    assert st.repeated_p(float(p), look, looks, kind) == pytest.approx(0.05, abs=1e-3)


def test_repeated_p_is_monotone_and_bounded() -> None:
    looks = [3, 5, 10]
    ps = [1e-6, 1e-3, 0.01, 0.02, 0.05, 0.1, 0.3, 0.6, 1.0]
    repeated = [st.repeated_p(p, 1, looks) for p in ps]
    assert repeated == sorted(repeated)
    assert all(r >= p for r, p in zip(repeated, ps))  # looking more often never helps
    assert repeated[-1] == 1.0


def test_repeated_p_with_one_look_is_p() -> None:
    for p in (0.003, 0.04, 0.5):
        assert st.repeated_p(p, 0, [10]) == pytest.approx(p, rel=1e-9)
        assert st.repeated_p(p, 0, [10], two_sided=False) == pytest.approx(p, rel=1e-9)
    assert st.repeated_p(0.8, 0, [10], two_sided=False) == pytest.approx(0.8, rel=1e-9)  # z < 0 one-sided


# --- two-way bootstrap ----------------------------------------------------------------------------


def test_bootstrap_with_identical_runs_is_the_image_bootstrap() -> None:
    rng = np.random.default_rng(11)
    images = 4000
    a = rng.random(images) < 0.90
    b = rng.random(images) < 0.85
    correct_a, correct_b = np.tile(a, (3, 1)), np.tile(b, (4, 1))
    estimate, low, high = st.two_way_bootstrap(correct_a, correct_b)
    assert estimate == pytest.approx(100 * (a.mean() - b.mean()))
    # Runs identical: resampling seeds changes nothing (a seeds-only bootstrap has width 0), so all
    # the width comes from the images: ~ +-1.96 SE of the paired per-image difference.
    d = a.astype(float) - b
    half = 1.96 * 100 * math.sqrt(d.var() / images)
    assert (high - low) / 2 == pytest.approx(half, rel=0.15)
    assert low < estimate < high
    assert (low, high) == st.two_way_bootstrap(correct_a, correct_b)[1:]  # deterministic


def test_bootstrap_with_seed_variation_only() -> None:
    # Side a: five runs at 99, 98, 97, 96, 95 % whose errors fall on disjoint images; side b: three
    # runs right everywhere. The per-image difference is nearly constant (image SE ~0.07 points), so
    # the width is the seed bootstrap's: +-1.96 * sd_plug-in(run accuracies) / sqrt(5) = +-1.24 points.
    images = 10_000
    accuracies = [99, 98, 97, 96, 95]
    correct_a = np.ones((5, images))
    start = 0
    for run, accuracy in enumerate(accuracies):
        wrong = (100 - accuracy) * images // 100
        correct_a[run, start : start + wrong] = 0
        start += wrong
    correct_b = np.ones((3, images))
    estimate, low, high = st.two_way_bootstrap(correct_a, correct_b, resamples=1000, seed=3)
    assert estimate == pytest.approx(-3.0)
    seed_half = 1.96 * np.std(accuracies) / math.sqrt(5)
    assert (high - low) / 2 == pytest.approx(seed_half, rel=0.20)
    per_image = correct_a.mean(axis=0) - 1
    image_half = 1.96 * 100 * math.sqrt(per_image.var() / images)
    assert (high - low) / 2 > 5 * image_half  # runs were resampled too


def test_bootstrap_refuses_misaligned_images() -> None:
    with pytest.raises(ValueError, match="same test images"):
        st.two_way_bootstrap(np.ones((2, 5)), np.ones((2, 6)))


# --- effect size, confusion ranks, binomial ------------------------------------------------------


def test_prob_greater_by_hand() -> None:
    # means 2 and 1, variances 1 and 1: Phi(1 / sqrt(2)) = 0.76025.
    assert st.prob_greater([1, 2, 3], [0, 1, 2]) == pytest.approx(0.7602499, abs=1e-7)
    assert st.prob_greater([0, 1, 2], [1, 2, 3]) == pytest.approx(1 - 0.7602499, abs=1e-7)
    assert math.isnan(st.prob_greater([1.0], [0.0, 1.0]))
    assert st.prob_greater([2, 2], [1, 1]) == 1.0
    assert st.prob_greater([1, 1], [2, 2]) == 0.0
    assert st.prob_greater([1, 1], [1, 1]) == 0.5


def test_pair_rank_by_hand() -> None:
    confusion = np.array([[50, 3, 1], [5, 40, 2], [0, 2, 45]])
    # Symmetric: {0,1} = 8, {0,2} = 1, {1,2} = 4 -> ranks 1, 3, 2.
    assert st.pair_rank(confusion, [(0, 1), (2, 1), (0, 2)]) == ([1, 2, 3], 3)
    tied = confusion.copy()
    tied[0, 2] = 4  # {0,2} = 4 ties {1,2}: both take rank 2
    assert st.pair_rank(tied, [(1, 2), (0, 2), (1, 0)]) == ([2, 2, 1], 3)
    assert st.pair_rank(np.eye(10), [(3, 5)])[1] == 45
    with pytest.raises(ValueError):
        st.pair_rank(confusion, [(1, 1)])


def test_rank_p_by_hand() -> None:
    # C(5, 2) / C(45, 2) = 10 / 990 per run, three runs.
    assert st.rank_p([[1, 3], [2, 5], [4, 1]], 45, 5) == pytest.approx((10 / 990) ** 3, rel=1e-12)
    assert st.rank_p([[1]], 45, 3) == pytest.approx(3 / 45)
    assert st.rank_p([[1, 3], [2, 6]], 45, 5) == 1.0  # a pair outside the top: the event did not happen
    with pytest.raises(ValueError):
        st.rank_p([[1, 2, 3]], 45, 2)


def test_binomial_by_hand() -> None:
    assert st.binomial_p(6, 6) == pytest.approx(2 / 64)
    assert st.binomial_p(5, 5) == pytest.approx(2 / 32)
    assert st.binomial_p(0, 6) == pytest.approx(2 / 64)
    assert st.binomial_p(3, 6) == pytest.approx(1.0)


def test_clopper_pearson_by_hand() -> None:
    # k = 0 or n: the one-sided bound solves (1 - p)^n = 0.025, i.e. 1 - 0.025^(1/n).
    low, high = st.clopper_pearson(0, 10)
    assert low == 0.0 and high == pytest.approx(1 - 0.025**0.1, rel=1e-9)
    low, high = st.clopper_pearson(10, 10)
    assert low == pytest.approx(0.025**0.1, rel=1e-9) and high == 1.0
    low, high = st.clopper_pearson(5, 10)  # the textbook 0.187 to 0.813
    assert (low, high) == pytest.approx((0.1871, 0.8129), abs=1e-4)


# --- t statistics -----------------------------------------------------------------------------


def test_welch_se_and_t_test_agree_with_scipys_welch_test() -> None:
    a, b = [50.0, 51.0, 52.5], [49.0, 49.4, 50.1, 49.8]
    va, vb = np.var(a, ddof=1), np.var(b, ddof=1)
    se, df = st.welch_se(va, 3, 2, vb, 4, 3)
    expected = stats.ttest_ind(a, b, equal_var=False)
    assert df == pytest.approx(expected.df) and se == pytest.approx(np.sqrt(va / 3 + vb / 4))
    test = st.t_test(np.mean(a) - np.mean(b), se, df, margin=1.0)
    ci = expected.confidence_interval(0.95)
    assert test["p_value"] == pytest.approx(expected.pvalue)
    assert (test["low"], test["high"]) == pytest.approx((ci.low, ci.high))
    low = stats.ttest_ind(np.add(a, 1.0), b, equal_var=False, alternative="greater").pvalue
    high = stats.ttest_ind(np.subtract(a, 1.0), b, equal_var=False, alternative="less").pvalue
    assert test["p_tost"] == pytest.approx(max(low, high))


def test_a_new_runs_scale_adds_each_sides_variance_once_more() -> None:
    """One new run of each side: var_a (1 + 1/n_a) + var_b (1 + 1/n_b) = 4/3 + 4/3 for unit variances."""
    se, df = st.welch_se(1.0, 3, 2, 1.0, 3, 2, new_run=True)
    assert se == pytest.approx(np.sqrt(8 / 3)) and df == pytest.approx(4.0)


def test_a_ratio_of_paired_timings_is_the_geometric_mean_with_a_log_t_interval() -> None:
    a, b = [2.0, 4.0, 3.0], [1.0, 2.0, 1.0]  # ratios 2, 2, 3
    ratio, low, high = st.ratio_interval(a, b)
    logs = np.log([2.0, 2.0, 3.0])
    half = stats.t.ppf(0.975, 2) * np.std(logs, ddof=1) / np.sqrt(3)
    assert ratio == pytest.approx(np.exp(logs.mean()))
    assert (low, high) == pytest.approx((np.exp(logs.mean() - half), np.exp(logs.mean() + half)))
    with pytest.raises(ValueError, match="positive"):
        st.ratio_interval([1.0, -1.0], [1.0, 1.0])
