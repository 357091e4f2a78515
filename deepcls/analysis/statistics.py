"""Pure statistics for comparing training runs: arrays in, numbers out, no store and no text (the
split of rliable's ``library.py`` from its ``metrics.py``). It holds multiplicity adjustment,
prediction intervals for one new run, empirical-Bayes moderation of per-cell variances (limma), seed
counts for power and for equivalence (TOST), group-sequential boundaries and repeated p-values so
that seeds can be added after looking (Jennison & Turnbull), a two-way (seeds × test images)
bootstrap (Bouthillier et al. 2021), the common-language effect size, confusion-pair ranks and exact
binomial tests. It leans on scipy.stats and statsmodels wherever they already hold the method."""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from functools import cache, lru_cache

import numpy as np
from scipy import optimize, special, stats

MAX_EQUIVALENCE_SEEDS = 10_000
"""The largest seed count per side that :func:`seeds_for_equivalence` searches; beyond it, ValueError."""

_MVN_EPS = 1e-5
"""Absolute error of scipy's quasi-Monte-Carlo multivariate normal probabilities. Its effect on a
boundary constant is ~1e-4, far inside the 3 decimals published tables give; 1e-6 costs 10-20x the
time from four looks on."""

_TOST_NODES = 256
"""Gauss-Legendre nodes of :func:`tost_power`'s integral over the sd estimate's quantiles."""

_MVN_SEED = 0
"""Fixed seed of that quasi-Monte-Carlo integration, so every probability here is deterministic."""


def _check_level(level: float, name: str = "level") -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {level!r}")


def _finite_1d(values: Sequence[float], name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return array


# --- multiplicity ---------------------------------------------------------------------------


def adjust(p_values: Sequence[float], method: str = "holm") -> np.ndarray:
    """Adjusted p-values for a family of tests, so a family of conclusions keeps its error rate:
    ``"holm"`` controls the family-wise error rate (Holm 1979, step-down Bonferroni), ``"fdr_bh"``
    (alias ``"bh"``) the false discovery rate (Benjamini & Hochberg 1995); statsmodels'
    ``multipletests``.

    NaN is refused (ValueError): a member that was not tested must enter as p = 1, not vanish from
    the family and so shrink it."""
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"p_values must be one-dimensional, got shape {p.shape}")
    if np.any(np.isnan(p)):
        raise ValueError("p_values contain NaN: put an untested member in as p = 1")
    if np.any((p < 0.0) | (p > 1.0)):
        raise ValueError("p_values must lie in [0, 1]")
    method = {"bh": "fdr_bh"}.get(method, method)
    if method not in ("holm", "fdr_bh"):
        raise ValueError(f"method must be 'holm', 'fdr_bh' or 'bh', got {method!r}")
    if p.size == 0:
        return p.copy()
    from statsmodels.stats.multitest import multipletests  # here: statsmodels takes a second to import

    return np.asarray(multipletests(p, method=method)[1], dtype=float)


# --- one new run ----------------------------------------------------------------------------


def prediction_interval(
    values: Sequence[float], level: float = 0.95, *, sd: float | None = None, df: float | None = None
) -> tuple[float, float]:
    """Where ONE new run's value will fall with probability ``level`` (not where the mean is):
    mean ± t_{df} · sd · sqrt(1 + 1/n), the normal-theory prediction interval (e.g. Hahn & Meeker,
    *Statistical Intervals*, 1991). Default sd is the sample sd (ddof=1) with df = n − 1; a caller
    may pass a moderated sd and its (larger) df from :func:`moderated_variances`; df = inf gives the
    normal quantile."""
    x = _finite_1d(values, "values")
    _check_level(level)
    n = x.size
    if n < 1:
        raise ValueError("values must hold at least one value")
    if sd is None:
        if n < 2:
            raise ValueError("the sample sd needs at least two values (or pass sd and df)")
        sd = float(np.std(x, ddof=1))
    if not (np.isfinite(sd) and sd >= 0.0):
        raise ValueError(f"sd must be finite and non-negative, got {sd!r}")
    if df is None:
        df = n - 1
    if not df > 0:
        raise ValueError(f"df must be positive, got {df!r}")
    half = float(stats.t.ppf(0.5 + level / 2.0, df)) * sd * math.sqrt(1.0 + 1.0 / n)
    centre = float(np.mean(x))
    return centre - half, centre + half


# --- empirical-Bayes variance moderation ----------------------------------------------------


def _trigamma_inverse(x: float) -> float:
    """The y with trigamma(y) = x, by limma's ``trigammaInverse`` (Smyth 2004): Newton's method on
    1/trigamma, which is convex and nearly linear, from y = 0.5 + 1/x, so it converges monotonically."""
    if x > 1e7:
        return 1.0 / math.sqrt(x)
    if x < 1e-6:
        return 1.0 / x
    y = 0.5 + 1.0 / x
    for _ in range(50):
        tri = float(special.polygamma(1, y))
        step = tri * (1.0 - tri / x) / float(special.polygamma(2, y))
        y += step
        if -step / y < 1e-8:
            break
    return y


def moderated_variances(
    variances: Sequence[float], dfs: Sequence[float]
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Empirical-Bayes moderated variances (limma's ``squeezeVar``, Smyth 2004): with few seeds per
    cell, each cell's sample variance is noisy; borrowing strength across cells shrinks it towards a
    common prior, and the result behaves as if it had d0 more degrees of freedom.

    The prior s0²·d0/χ²_{d0} (scaled inverse chi-square) is fitted by limma's ``fitFDist`` (method
    of moments on log variances): e = log s² − ψ(d/2) + log(d/2); var(e) − mean(ψ'(d/2)) = ψ'(d0/2)
    gives d0, and s0² = exp(mean(e) + ψ(d0/2) − log(d0/2)). When that prior variance of e is ≤ 0 the
    cells look homogeneous: d0 = inf and s0² is the pooled variance Σd·s²/Σd (limma: the plain mean,
    equal for equal dfs), so every posterior equals s0². The fit uses the rows with df > 0 and
    variance > 0 (at least two, else ValueError); a row with df = 0 gets the prior.

    Returns (posterior variances (d0·s0² + d·s²)/(d0 + d), posterior dfs d0 + d capped at Σd as
    limma's ``eBayes`` caps them, s0², d0)."""
    s2 = _finite_1d(variances, "variances")
    d = _finite_1d(dfs, "dfs")
    if s2.shape != d.shape:
        raise ValueError(f"variances and dfs differ in length: {s2.size} vs {d.size}")
    if np.any(s2 < 0.0) or np.any(d < 0.0):
        raise ValueError("variances and dfs must be non-negative")
    fit = (d > 0.0) & (s2 > 0.0)
    if fit.sum() < 2:
        raise ValueError("moderation needs at least two rows with df > 0 and variance > 0")
    s2_fit, d_fit = s2[fit], d[fit]
    e = np.log(s2_fit) - special.digamma(d_fit / 2.0) + np.log(d_fit / 2.0)
    prior_var = float(np.var(e, ddof=1) - np.mean(special.polygamma(1, d_fit / 2.0)))
    if prior_var > 0.0:
        d0 = 2.0 * _trigamma_inverse(prior_var)
        s0_squared = float(np.exp(np.mean(e) + special.digamma(d0 / 2.0) - np.log(d0 / 2.0)))
        posterior = (d0 * s0_squared + d * s2) / (d0 + d)
        posterior_df = d0 + d
    else:
        d0 = math.inf
        s0_squared = float(np.sum(d_fit * s2_fit) / np.sum(d_fit))
        posterior = np.full(s2.shape, s0_squared)
        posterior_df = np.full(s2.shape, math.inf)
    return posterior, np.minimum(posterior_df, float(np.sum(d))), s0_squared, d0


# --- seeds to plan ----------------------------------------------------------------------------


def _check_plan(margin: float, sd: float, samples: int, alpha: float, power: float) -> None:
    if not (np.isfinite(margin) and margin > 0.0):
        raise ValueError(f"margin must be positive, got {margin!r}")
    if not (np.isfinite(sd) and sd > 0.0):
        raise ValueError(f"sd must be positive, got {sd!r}")
    if samples not in (1, 2):
        raise ValueError(f"samples must be 1 (paired / one-sample) or 2 (two independent sides), got {samples!r}")
    _check_level(alpha, "alpha")
    _check_level(power, "power")


def _t_test_power(n: int, effect: float, samples: int, alpha: float) -> float:
    """Two-sided t-test power, both tails of the noncentral t (statsmodels' formula, on scipy's
    ``nct``, which stays finite where statsmodels' ``power`` gives NaN: d = 10, n = 3)."""
    df = samples * (n - 1)
    noncentrality = effect * math.sqrt(n / samples)
    crit = float(stats.t.ppf(1.0 - alpha / 2.0, df))
    return float(stats.nct.sf(crit, df, noncentrality) + stats.nct.cdf(-crit, df, noncentrality))


def t_test_power(n: int, margin: float, sd: float, *, samples: int = 2, alpha: float = 0.05) -> float:
    """The power of a two-sided t-test at ``alpha`` with n seeds per side (``samples`` 2) or n pairs
    (1) against a true difference of ``margin`` at spread ``sd``: the chance that n seeds decide it."""
    _check_plan(margin, sd, samples, alpha, 0.5)
    if n < 2:
        raise ValueError(f"n must be at least 2, got {n!r}")
    return _t_test_power(n, margin / sd, samples, alpha)


def seeds_for_power(margin: float, sd: float, *, samples: int = 2, alpha: float = 0.05, power: float = 0.8) -> int:
    """Seeds per side so that a two-sided t-test at ``alpha`` detects a true difference of ``margin``
    with probability ``power`` (samples=2: two independent sides of equal n; samples=1: a paired or
    one-sample test). statsmodels' ``TTestIndPower`` / ``TTestPower`` ``solve_power`` rounded up
    (Cohen 1988: d = 0.5 → 64 per group), at least 2; then moved to the smallest integer n whose
    noncentral-t power reaches ``power``, because for large effects the solver stops at its bound of
    2 with too little power (``TTestPower``, d = 10: 0.73)."""
    _check_plan(margin, sd, samples, alpha, power)
    effect = margin / sd

    def enough(n: int) -> bool:
        return _t_test_power(n, effect, samples, alpha) >= power

    if enough(2):
        return 2
    from statsmodels.stats.power import TTestIndPower, TTestPower

    solver = TTestIndPower() if samples == 2 else TTestPower()
    solved = float(np.squeeze(solver.solve_power(effect_size=effect, alpha=alpha, power=power)))
    n = max(2, math.ceil(solved - 1e-9)) if math.isfinite(solved) else 2
    while not enough(n):
        n += 1
    while n > 2 and enough(n - 1):
        n -= 1
    return n


@cache
def _legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [-1, 1] (an eigenproblem: computed once)."""
    return np.polynomial.legendre.leggauss(n)


def tost_power(
    n: int, margin: float, sd: float, *, samples: int = 2, alpha: float = 0.05, true_difference: float = 0.0
) -> float:
    """Probability that TOST (two one-sided t-tests at ``alpha`` each, bounds ±margin; Schuirmann
    1987) concludes equivalence with n seeds per side when the true difference is
    ``true_difference``: the power that :func:`seeds_for_equivalence` plans for.

    Exact, by numerical integration over the sampling distribution of the sd estimate (Owen 1965's
    Q function, what PowerTOST's ``method="exact"`` evaluates): with Z ~ N(0, 1) the standardised
    difference and U = s/σ (df·U² ~ χ²_df), power = E_U[Φ(a − t·U) − Φ(b + t·U)]⁺ where
    a, b = (±margin − δ)/(σ·k), k = sqrt(samples/n), t = t_{1−α, df}, df = samples·(n − 1)."""
    _check_plan(margin, sd, samples, alpha, 0.5)
    if n < 2:
        raise ValueError(f"n must be at least 2, got {n!r}")
    df = samples * (n - 1)
    scale = sd * math.sqrt(samples / n)
    crit = float(stats.t.ppf(1.0 - alpha, df))
    upper = (margin - true_difference) / scale
    lower = (-margin - true_difference) / scale
    u_max = margin / (scale * crit)  # beyond it the rejection region is empty
    q_max = float(stats.chi2.cdf(df * u_max**2, df))
    if q_max <= 0.0:
        return 0.0

    # on the probability scale of U the integrand is smooth and bounded: Gauss-Legendre nodes, one
    # vectorised quantile call (quad's scalar calls cost seconds per line of a ledger)
    nodes, weights = _legendre(_TOST_NODES)
    q = q_max * (nodes + 1.0) / 2.0
    u = np.sqrt(stats.chi2.ppf(q, df) / df)
    conditional = np.maximum(0.0, special.ndtr(upper - crit * u) - special.ndtr(lower + crit * u))
    value = float(np.dot(weights, conditional)) * q_max / 2.0
    return float(min(1.0, max(0.0, value)))


def seeds_for_equivalence(
    margin: float,
    sd: float,
    *,
    samples: int = 2,
    alpha: float = 0.05,
    power: float = 0.8,
    true_difference: float = 0.0,
) -> int:
    """Seeds per side so that TOST at ``alpha`` (bounds ±margin) concludes equivalence with
    probability ``power`` when the true difference is ``true_difference``: how many seeds it takes
    to show that two settings are the same within ``margin``, not merely to fail to tell them apart.

    The smallest n ≥ 2 whose exact power (:func:`tost_power`, numerical integration) reaches
    ``power``, found by a doubling-and-bisection search over n (power rises with n). ValueError when
    |true_difference| ≥ margin (power never exceeds alpha) or when more than
    ``MAX_EQUIVALENCE_SEEDS`` seeds per side would be needed."""
    _check_plan(margin, sd, samples, alpha, power)
    if not abs(true_difference) < margin:
        raise ValueError(f"|true_difference| ({true_difference!r}) must be below the margin ({margin!r})")

    def enough(n: int) -> bool:
        return tost_power(n, margin, sd, samples=samples, alpha=alpha, true_difference=true_difference) >= power

    if enough(2):
        return 2
    low, high = 2, 4
    while not enough(high):
        if high >= MAX_EQUIVALENCE_SEEDS:
            raise ValueError(
                f"equivalence within {margin} at sd {sd} needs more than {MAX_EQUIVALENCE_SEEDS} seeds per side"
            )
        low, high = high, min(2 * high, MAX_EQUIVALENCE_SEEDS)
    while high - low > 1:  # invariant: power(low) < target <= power(high)
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle, high)
    return high


# --- group-sequential designs -----------------------------------------------------------------


def _information(looks: Sequence[int]) -> tuple[float, ...]:
    t = np.asarray(looks, dtype=float)
    if t.ndim != 1 or t.size < 1:
        raise ValueError("looks must be a non-empty sequence of sample sizes")
    if not (np.all(np.isfinite(t)) and t[0] > 0.0 and np.all(np.diff(t) > 0.0)):
        raise ValueError(f"looks must be positive and strictly increasing, got {list(looks)!r}")
    return tuple(float(v) for v in t / t[-1])


def _shape(t: Sequence[float], kind: str) -> np.ndarray:
    """f(t_k) of the boundary c_k = C·f(t_k): Pocock 1977 (flat) or O'Brien & Fleming 1979."""
    if kind == "pocock":
        return np.ones(len(t))
    if kind == "obrien-fleming":
        return 1.0 / np.sqrt(np.asarray(t))
    raise ValueError(f"kind must be 'pocock' or 'obrien-fleming', got {kind!r}")


def _continue_probability(bounds: np.ndarray, t: Sequence[float], mean: np.ndarray, two_sided: bool) -> float:
    """P(no crossing at any of the looks): Z_k Brownian motion at information t_k, so
    corr(Z_i, Z_j) = sqrt(t_i/t_j) for i < j (Jennison & Turnbull 2000, §3.1)."""
    if len(t) == 1:
        below = float(special.ndtr(bounds[0] - mean[0]))
        return below - float(special.ndtr(-bounds[0] - mean[0])) if two_sided else below
    info = np.asarray(t)
    cov = np.sqrt(np.minimum.outer(info, info) / np.maximum.outer(info, info))
    return float(
        stats.multivariate_normal.cdf(
            bounds,
            mean=mean,
            cov=cov,
            lower_limit=-bounds if two_sided else None,
            abseps=_MVN_EPS,
            releps=_MVN_EPS,
            rng=np.random.default_rng(_MVN_SEED),
        )
    )


def _nominal(z: np.ndarray, two_sided: bool) -> np.ndarray:
    return 2.0 * special.ndtr(-z) if two_sided else special.ndtr(-z)


def _crossing_probability(constant: float, t: Sequence[float], shape: np.ndarray, two_sided: bool) -> float:
    """H0 probability of crossing C·f(t_k) at any look, held within the Bonferroni bounds
    [max_k p_k, Σ_k p_k] of the per-look nominal levels p_k (exact there; guards the integration's
    absolute error where the probability is tiny)."""
    bounds = constant * shape
    crossing = 1.0 - _continue_probability(bounds, t, np.zeros(len(t)), two_sided)
    nominal = _nominal(bounds, two_sided)
    return float(min(1.0, np.clip(crossing, nominal.max(), nominal.sum())))


@lru_cache(maxsize=256)
def _constant(t: tuple[float, ...], kind: str, alpha: float, two_sided: bool) -> float:
    shape = _shape(t, kind)
    tail = alpha / 2.0 if two_sided else alpha
    if len(t) == 1:
        return float(stats.norm.isf(tail) / shape[0])
    # f >= 1, so C lies between the one-look and the Bonferroni constants.
    low = float(stats.norm.isf(tail)) - 0.01
    high = float(stats.norm.isf(tail / len(t))) + 0.01
    return float(optimize.brentq(lambda c: _crossing_probability(c, t, shape, two_sided) - alpha, low, high, xtol=1e-6))


def boundaries(looks: Sequence[int], kind: str = "pocock", alpha: float = 0.05, two_sided: bool = True) -> np.ndarray:
    """The z boundaries c_k = C·f(t_k) of a group-sequential design with looks after ``looks[k]``
    seeds (t_k = looks[k]/looks[-1]): stop and reject at the first look with |Z_k| ≥ c_k (one-sided:
    Z_k ≥ c_k), so peeking K times still has type-I error ``alpha``. f = 1 (Pocock 1977) or
    1/sqrt(t_k) (``"obrien-fleming"``, O'Brien & Fleming 1979); C solved with brentq, the crossing
    probability from scipy's multivariate normal (Jennison & Turnbull 2000, ch. 2: Pocock K=4 →
    2.361)."""
    _check_level(alpha, "alpha")
    t = _information(looks)
    return _constant(t, kind, float(alpha), bool(two_sided)) * _shape(t, kind)


def nominal_levels(
    looks: Sequence[int], kind: str = "pocock", alpha: float = 0.05, two_sided: bool = True
) -> np.ndarray:
    """The ordinary p-value each look must reach to stop (the boundaries on the p scale): what a
    reader compares a look's t-test p with (Pocock K=4, α = 0.05 → 0.0182 at every look)."""
    return _nominal(boundaries(looks, kind, alpha, two_sided), two_sided)


def repeated_p(p: float, look: int, looks: Sequence[int], kind: str = "pocock", two_sided: bool = True) -> float:
    """Jennison & Turnbull's repeated p-value (2000, ch. 9): the smallest alpha at which the design
    (``looks``, ``kind``) would reject at look index ``look`` (0-based), given the ordinary p-value
    ``p`` of the test there. It stays valid however the looks came to be taken, so seeds may be
    added after looking. z from p (two-sided Φ⁻¹(1 − p/2), one-sided Φ⁻¹(1 − p)), C' = z/f(t_look),
    and the H0 probability of crossing C'·f(t_k) at any look; p = 1 → 1, and with one look it is p."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must lie in [0, 1], got {p!r}")
    t = _information(looks)
    if not 0 <= look < len(t):
        raise ValueError(f"look must index looks (0..{len(t) - 1}), got {look!r}")
    shape = _shape(t, kind)
    if p >= 1.0 or p <= 0.0:
        return float(p)
    z = float(stats.norm.isf(p / 2.0 if two_sided else p))
    return _crossing_probability(z / shape[look], t, shape, two_sided)


# --- seeds × test images ----------------------------------------------------------------------


def _counts(indices: np.ndarray, size: int) -> np.ndarray:
    """Row-wise bincount of an (m × draws) index array: how often each of ``size`` items was drawn."""
    rows = indices.shape[0]
    offset = indices + (np.arange(rows) * size)[:, None]
    return np.bincount(offset.ravel(), minlength=rows * size).reshape(rows, size).astype(float)


def two_way_bootstrap(
    correct_a: np.ndarray, correct_b: np.ndarray, *, level: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """Interval for the accuracy difference a − b (in points) that counts both sources of variance
    of a benchmark: which seeds were run and which test images were drawn (Bouthillier et al. 2021,
    "Accounting for variance in machine learning benchmarks"). ``correct_a`` (runs_a × images) and
    ``correct_b`` (runs_b × images) are 0/1 over the SAME test images, columns aligned.

    Each resample draws runs with replacement within each side and one set of image indices with
    replacement shared by both sides (they share a test set, so the image draw is paired); the
    statistic is 100·(mean accuracy of a − mean accuracy of b). Returns (estimate on the original
    data, low, high), a percentile interval; deterministic for a given ``seed``."""
    a = np.asarray(correct_a, dtype=float)
    b = np.asarray(correct_b, dtype=float)
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError("correct_a and correct_b must be 2-D (runs × images)")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"both sides must cover the same test images: {a.shape[1]} vs {b.shape[1]} columns")
    if min(a.shape) < 1 or b.shape[0] < 1:
        raise ValueError("each side needs at least one run and one image")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("correct_a and correct_b must be finite")
    _check_level(level)
    if resamples < 1:
        raise ValueError(f"resamples must be positive, got {resamples!r}")
    runs_a, images = a.shape
    runs_b = b.shape[0]
    rng = np.random.default_rng(seed)
    chunk = max(1, min(resamples, (1 << 21) // images))  # a few (chunk × images) arrays of ~16 MB
    draws = np.empty(resamples)
    for start in range(0, resamples, chunk):
        m = min(chunk, resamples - start)
        weight_a = _counts(rng.integers(0, runs_a, size=(m, runs_a)), runs_a) / runs_a
        weight_b = _counts(rng.integers(0, runs_b, size=(m, runs_b)), runs_b) / runs_b
        weight_images = _counts(rng.integers(0, images, size=(m, images)), images) / images
        per_image = weight_a @ a - weight_b @ b  # (m × images): resampled runs' mean difference per image
        draws[start : start + m] = 100.0 * np.einsum("ij,ij->i", per_image, weight_images)
    estimate = 100.0 * float(a.mean() - b.mean())
    low, high = np.quantile(draws, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return estimate, float(low), float(high)


# --- effect size ------------------------------------------------------------------------------


def prob_greater(a: Sequence[float], b: Sequence[float]) -> float:
    """P(A > B): the chance that a random run of side a beats a random run of side b, under a normal
    model, Φ((mean_a − mean_b)/sqrt(var_a + var_b)) with sample variances (ddof=1) — the
    common-language effect size (McGraw & Wong 1992), read more easily than a difference in sds.
    NaN when either side has fewer than 2 values; when both variances are 0 the runs never overlap:
    1.0, 0.0 or 0.5 as mean_a is above, below or equal to mean_b."""
    x = _finite_1d(a, "a")
    y = _finite_1d(b, "b")
    if x.size < 2 or y.size < 2:
        return math.nan
    difference = float(np.mean(x) - np.mean(y))
    spread = float(np.var(x, ddof=1) + np.var(y, ddof=1))
    if spread == 0.0:
        return 1.0 if difference > 0.0 else 0.0 if difference < 0.0 else 0.5
    return float(special.ndtr(difference / math.sqrt(spread)))


# --- which classes are confused ---------------------------------------------------------------


def pair_rank(confusion: np.ndarray, pairs: Sequence[tuple[int, int]]) -> tuple[list[int], int]:
    """Rank (1 = most confused) of each named unordered class pair {i, j} by its symmetric confusion
    c[i, j] + c[j, i] among all k(k − 1)/2 pairs of a k × k confusion matrix (rows true, columns
    predicted), with the number of pairs: does a model confuse the pairs one expects (cat/dog) more
    than the rest? Ties share the best rank (``scipy.stats.rankdata`` 'min' on negated counts)."""
    c = np.asarray(confusion, dtype=float)
    if c.ndim != 2 or c.shape[0] != c.shape[1] or c.shape[0] < 2:
        raise ValueError(f"confusion must be a square k × k matrix with k >= 2, got shape {c.shape}")
    if not np.all(np.isfinite(c)) or np.any(c < 0.0):
        raise ValueError("confusion must hold finite, non-negative counts")
    k = c.shape[0]
    rows, cols = np.triu_indices(k, 1)
    symmetric = c + c.T
    ranks = stats.rankdata(-symmetric[rows, cols], method="min").astype(int)
    position = {(int(i), int(j)): n for n, (i, j) in enumerate(zip(rows, cols))}
    out = []
    for i, j in pairs:
        if not (0 <= i < k and 0 <= j < k) or i == j:
            raise ValueError(f"pair ({i}, {j}) must name two different classes of 0..{k - 1}")
        out.append(int(ranks[position[(min(i, j), max(i, j))]]))
    return out, len(rows)


def rank_p(ranks_per_run: Sequence[Sequence[int]], pairs_total: int, top: int) -> float:
    """Exact one-sided p-value that the named pairs rank within the top ``top`` in every run by
    chance: under H0 their ranks are a uniformly random m-subset of 1..pairs_total, independently in
    each run, so p = Π_runs C(top, m)/C(pairs_total, m) (= (C(top, m)/C(pairs_total, m))^n for n runs
    of m pairs). If some observed rank lies beyond ``top`` the event did not happen and p = 1.
    Assumes untied ranks (ties ranked 'min' make the event a little likelier than this)."""
    if pairs_total < 1 or not 1 <= top <= pairs_total:
        raise ValueError(f"need 1 <= top <= pairs_total, got top={top!r}, pairs_total={pairs_total!r}")
    runs = [list(r) for r in ranks_per_run]
    if not runs or any(len(r) == 0 for r in runs):
        raise ValueError("ranks_per_run needs at least one run with at least one named pair")
    for r in runs:
        if len(r) > top:
            raise ValueError(f"top ({top}) must be at least the number of named pairs ({len(r)})")
        if any(not 1 <= rank <= pairs_total for rank in r):
            raise ValueError(f"ranks must lie in 1..{pairs_total}, got {r!r}")
    if any(rank > top for r in runs for rank in r):
        return 1.0
    p = Fraction(1)
    for r in runs:
        p *= Fraction(math.comb(top, len(r)), math.comb(pairs_total, len(r)))
    return float(p)


# --- binomial -------------------------------------------------------------------------------


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper & Pearson 1934) interval for a rate from k successes in n trials, e.g. the
    share of seeds on which a claim held; never narrower than its nominal coverage needs
    (``scipy.stats.binomtest(...).proportion_ci(method="exact")``)."""
    _check_level(level)
    interval = stats.binomtest(k, n).proportion_ci(confidence_level=level, method="exact")
    return float(interval.low), float(interval.high)


def binomial_p(k: int, n: int, rate: float = 0.5) -> float:
    """Two-sided exact binomial test p-value (``scipy.stats.binomtest``): could k of n (e.g. seeds
    on which a beats b) have come from a true ``rate``? 6 of 6 at 1/2 → 2/64."""
    return float(stats.binomtest(k, n, p=rate).pvalue)


# --- t statistics -----------------------------------------------------------------------------


def welch_se(
    var_a: float, n_a: int, df_a: float, var_b: float, n_b: int, df_b: float, *, new_run: bool = False
) -> tuple[float, float]:
    """The standard error of mean_a − mean_b and its Welch–Satterthwaite degrees of freedom, from
    each side's variance and the df it carries (n − 1 for a sample variance, more for a moderated
    one, :func:`moderated_variances`). ``new_run``: the scale of the difference between ONE new run
    of each side, var·(1 + 1/n) a side, for a prediction interval rather than a confidence one."""
    parts = [var * ((1.0 if new_run else 0.0) + 1.0 / n) for var, n in ((var_a, n_a), (var_b, n_b))]
    se2 = sum(parts)
    if se2 == 0.0:
        return 0.0, float(df_a + df_b)
    denominator = sum(part**2 / df for part, df in zip(parts, (df_a, df_b)) if part > 0.0)
    return math.sqrt(se2), float(se2**2 / denominator)


def t_test(
    difference: float, se: float, df: float, margin: float, *, level: float = 0.95, equivalence: float = 0.90
) -> dict[str, float]:
    """A difference's t test from its standard error and df: the ``level`` and ``equivalence``
    intervals, the two-sided p against 0 and the TOST p against ±``margin`` (Schuirmann 1987: the
    larger p of the one-sided tests that the difference lies above −margin and below +margin).
    A zero ``se`` (identical runs) gives p 0 or 1 by whether the difference is 0 or beyond ``margin``."""
    _check_level(level)
    _check_level(equivalence, "equivalence")
    if se == 0.0:
        p = 1.0 if difference == 0.0 else 0.0
        p_tost = 0.0 if abs(difference) < margin else 1.0
        return dict(
            low=difference, high=difference, tost_low=difference, tost_high=difference, p_value=p, p_tost=p_tost
        )
    dist = stats.t(df)
    half, half90 = (float(dist.ppf(0.5 + x / 2.0)) * se for x in (level, equivalence))
    t = difference / se
    p_value = float(2.0 * dist.sf(abs(t)))
    p_above = float(dist.sf((difference + margin) / se))  # H0: difference <= -margin
    p_below = float(dist.cdf((difference - margin) / se))  # H0: difference >= +margin
    return dict(
        low=difference - half,
        high=difference + half,
        tost_low=difference - half90,
        tost_high=difference + half90,
        p_value=p_value,
        p_tost=max(p_above, p_below),
    )


def ratio_interval(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """The ratio of paired positive measurements a/b (e.g. seconds per epoch of two models timed in
    alternation) with its ``level`` interval: a paired t interval on the log ratios, exponentiated —
    the geometric mean ratio, the scale on which timings vary."""
    x, y = _finite_1d(a, "a"), _finite_1d(b, "b")
    if x.shape != y.shape or x.size < 2 or np.any(x <= 0.0) or np.any(y <= 0.0):
        raise ValueError("ratio_interval needs two paired samples of at least 2 positive values")
    logs = np.log(x / y)
    interval = stats.ttest_1samp(logs, 0.0).confidence_interval(level)
    return float(np.exp(np.mean(logs))), float(np.exp(interval.low)), float(np.exp(interval.high))
