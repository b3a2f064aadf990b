"""Statistics behind pinnlab's study reports.

A *study* is a ``pandas.DataFrame`` with one row per training run: factor columns named by
dotted config keys (``"problem.dim"``, ``"net.depth"``, ``"net.activation"``; values int, float,
str or bool), a ``"seed"`` column and response columns (``"rel_l2"``, ``"wall_time"``, ...).
A *design cell* is the set of rows with equal values of the factors (runs that differ only by
their seed).

What is here:

* ``power_law`` -- fit ``y ≈ c · x^k`` (scaling with dimension, width, steps, ...);
* ``censored_power_law`` -- fit ``y ≈ c · Π_j x_j^{k_j}`` where some ``y`` are only lower
  bounds (runs stopped at their budget before reaching a target: right-censored);
* ``summarize`` -- mean, std, min, max, count and geometric mean per group;
* ``main_effects``, ``interactions``, ``interaction_table`` -- factorial effects with
  bootstrap confidence intervals (seeds resampled within design cells);
* ``anova`` -- type-II analysis of variance with the share of the variation per term.

Rows whose response is missing (NaN, e.g. a failed run) are left out by the effect and ANOVA
functions; non-finite values other than NaN (a diverged run's ``inf``) are kept and propagate.
Everything is deterministic: the bootstrap draws from ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as _sps

__all__ = [
    "CensoredPowerLaw",
    "Effect",
    "PowerLaw",
    "anova",
    "censored_power_law",
    "interaction_table",
    "interactions",
    "main_effects",
    "power_law",
    "summarize",
]

TIMES = " × "  # joins factor names of an interaction term: "net.depth × net.width"


# --------------------------------------------------------------------------------------------
# Power laws
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PowerLaw:
    """A fitted power law ``y ≈ prefactor · x^exponent``.

    ``exponent_ci`` is the confidence interval of the exponent from the t distribution with
    ``n - 2`` degrees of freedom; ``r2`` is the coefficient of determination of the straight-line
    fit in log-log coordinates; ``n`` is the number of points fitted.
    """

    exponent: float
    prefactor: float
    exponent_ci: tuple[float, float]
    r2: float
    n: int

    def __call__(self, x: Any) -> np.ndarray:
        """Evaluate ``prefactor · x^exponent``."""
        return self.prefactor * np.asarray(x, dtype=float) ** self.exponent


def power_law(x: Any, y: Any, level: float = 0.95) -> PowerLaw:
    """Fit ``y ≈ c · x^k`` by least squares of ``log y`` on ``log x``.

    With ``u = log x`` and ``v = log y``: ``k = S_uv / S_uu``, ``log c = v̄ - k ū``; the standard
    error of ``k`` is ``s / sqrt(S_uu)`` with ``s² = RSS / (n - 2)``, and the interval is
    ``k ± t_{(1+level)/2, n-2} · se``. Pass every point (e.g. every seed), not cell means: the
    scatter between seeds is what the interval measures.

    Raises ``ValueError`` for fewer than 3 points, non-finite or non-positive values, a single
    distinct ``x``, or mismatched lengths.
    """
    _check_level(level)
    xa = np.asarray(x, dtype=float).ravel()
    ya = np.asarray(y, dtype=float).ravel()
    if xa.shape != ya.shape:
        raise ValueError(
            f"power_law: x and y must have the same number of values, got {xa.size} and {ya.size}"
        )
    n = xa.size
    if n < 3:
        raise ValueError(f"power_law: need at least 3 points to fit a power law, got {n}")
    for name, a in (("x", xa), ("y", ya)):
        if not np.all(np.isfinite(a)):
            raise ValueError(
                f"power_law: {name} contains NaN or infinite values; drop failed runs first"
            )
        if np.any(a <= 0):
            raise ValueError(
                f"power_law: {name} must be positive for a log-log fit, got minimum {a.min():g}"
            )
    if np.unique(xa).size < 2:
        raise ValueError(
            f"power_law: x has a single distinct value ({xa[0]:g}); need at least 2 to fit a slope"
        )
    u, v = np.log(xa), np.log(ya)
    du, dv = u - u.mean(), v - v.mean()
    suu = float(du @ du)
    k = float(du @ dv) / suu
    log_c = float(v.mean() - k * u.mean())
    resid = dv - k * du
    rss = float(resid @ resid)
    tss = float(dv @ dv)
    r2 = 1.0 - rss / tss if tss > 0 else 1.0
    se = float(np.sqrt(rss / (n - 2) / suu))
    t = float(_sps.t.ppf(0.5 + level / 2, n - 2))
    return PowerLaw(
        exponent=k,
        prefactor=float(np.exp(log_c)),
        exponent_ci=(k - t * se, k + t * se),
        r2=r2,
        n=int(n),
    )


@dataclass(frozen=True)
class CensoredPowerLaw:
    """A fitted ``y ≈ prefactor · Π_j x_j^{exponents[j]}`` with log-normal scatter ``sigma``.

    ``exponent_ci`` holds each exponent's confidence interval; ``n`` is the number of points,
    ``censored`` how many of them were lower bounds.
    """

    exponents: dict[str, float]
    prefactor: float
    exponent_ci: dict[str, tuple[float, float]]
    sigma: float
    n: int
    censored: int

    def __call__(self, **x: Any) -> np.ndarray:
        """Evaluate the law at the given values of every variable."""
        out = np.full(np.broadcast(*map(np.asarray, x.values())).shape, self.prefactor)
        for name, k in self.exponents.items():
            out = out * np.asarray(x[name], dtype=float) ** k
        return out


def censored_power_law(
    x: dict[str, Any], y: Any, censored: Any = None, level: float = 0.95
) -> CensoredPowerLaw:
    """Fit ``log y = log c + Σ_j k_j log x_j + σ z``, z standard normal, by maximum
    likelihood where the points with ``censored`` true are right-censored: their true ``y``
    is only known to exceed the given one (Tobin 1958; a Tobit / log-normal accelerated
    failure time model, Kalbfleisch & Prentice, *The Statistical Analysis of Failure Time
    Data*, 2nd ed., §2.2). Censored points are kept, never dropped: dropping them would bias
    the exponents of a cost that grows towards the budget low.

    Intervals: Wald, from the inverse observed information at the optimum, with the t
    quantile on n − p − 1 degrees of freedom and σ² scaled by n/(n − p − 1), p the number of
    variables; without censoring this is exactly ordinary least squares and its t intervals
    (``power_law`` for one variable).

    Raises ``ValueError`` for non-positive or non-finite values, too few points, too few
    uncensored points (fewer than p + 2) or a variable with a single distinct value.
    """
    from scipy import optimize

    _check_level(level)
    names = list(x)
    y = np.asarray(y, dtype=float).ravel()
    cens = np.zeros(y.shape, bool) if censored is None else np.asarray(censored, bool).ravel()
    columns = [np.asarray(x[k], dtype=float).ravel() for k in names]
    n, p = y.size, len(names)
    if not names or any(c.shape != y.shape for c in columns) or cens.shape != y.shape:
        raise ValueError(
            "censored_power_law: every variable, y and censored need the same number of values"
        )
    for name, a in (*zip(names, columns, strict=True), ("y", y)):
        if not np.all(np.isfinite(a)) or np.any(a <= 0):
            raise ValueError(f"censored_power_law: {name} must be positive and finite")
    for name, a in zip(names, columns, strict=True):
        if np.unique(a).size < 2:
            raise ValueError(f"censored_power_law: {name} has a single distinct value")
    if n - cens.sum() < p + 2 or n <= p + 1:
        raise ValueError(
            f"censored_power_law: {int(n - cens.sum())} of {n} points reached their target; "
            f"a fit of {p} exponents needs at least {p + 2}"
        )
    design = np.column_stack([np.ones(n), *map(np.log, columns)])
    v = np.log(y)
    start, *_ = np.linalg.lstsq(design[~cens], v[~cens], rcond=None)
    spread = max(float(np.std(v[~cens] - design[~cens] @ start)), 1e-3)

    def negative_log_likelihood(theta: np.ndarray) -> float:
        beta, log_sigma = theta[:-1], theta[-1]
        z = (v - design @ beta) / np.exp(log_sigma)
        exact = _sps.norm.logpdf(z[~cens]).sum() - (~cens).sum() * log_sigma
        return -(exact + _sps.norm.logsf(z[cens]).sum())

    theta0 = np.append(start, np.log(spread))
    fit = optimize.minimize(negative_log_likelihood, theta0, method="BFGS", options={"gtol": 1e-10})
    theta = fit.x
    hessian = _hessian(negative_log_likelihood, theta)
    covariance = np.linalg.pinv(hessian)[:-1, :-1]
    dof = n - p - 1
    covariance *= n / dof  # the small-sample factor of σ² (exact OLS without censoring)
    t = float(_sps.t.ppf(0.5 + level / 2, dof))
    se = np.sqrt(np.clip(np.diag(covariance), 0, None))
    return CensoredPowerLaw(
        exponents={k: float(b) for k, b in zip(names, theta[1:-1], strict=True)},
        prefactor=float(np.exp(theta[0])),
        exponent_ci={
            k: (float(b - t * e), float(b + t * e))
            for k, b, e in zip(names, theta[1:-1], se[1:], strict=True)
        },
        sigma=float(np.exp(theta[-1])),
        n=int(n),
        censored=int(cens.sum()),
    )


def _hessian(f, theta: np.ndarray, step: float = 1e-4) -> np.ndarray:
    """The Hessian of ``f`` at ``theta`` by central differences."""
    k = theta.size
    out = np.empty((k, k))
    eye = np.eye(k) * step
    for i in range(k):
        for j in range(i, k):
            out[i, j] = out[j, i] = (
                f(theta + eye[i] + eye[j])
                - f(theta + eye[i] - eye[j])
                - f(theta - eye[i] + eye[j])
                + f(theta - eye[i] - eye[j])
            ) / (4 * step**2)
    return out


# --------------------------------------------------------------------------------------------
# Summaries
# --------------------------------------------------------------------------------------------


def summarize(
    df: pd.DataFrame, by: str | list[str], value: str, *, log: bool | None = None
) -> pd.DataFrame:
    """Per group of ``by``: ``mean``, ``std`` (ddof = 1, NaN for a single run), ``min``, ``max``,
    ``count`` (runs with a non-missing value) and, for log-scale responses, ``gmean``.

    ``gmean = exp(mean(log y))`` is the geometric mean, the natural centre of a response spread
    over orders of magnitude (errors, times). ``log=None`` adds it when every value of ``value`` is
    positive, ``True`` always adds it (NaN for a group with a non-positive value), ``False``
    never. Missing values (NaN) are skipped. Groups are sorted by their keys; the index holds the
    ``by`` columns.
    """
    by_list = _as_list(by)
    _check_columns(df, [*by_list, value], "summarize")
    values = pd.to_numeric(df[value], errors="raise").to_numpy(dtype=float)
    present = values[~np.isnan(values)]
    with_gmean = bool(present.size and np.all(present > 0)) if log is None else bool(log)

    keys: list[Any] = []
    rows: list[dict[str, float]] = []
    grouped = df.groupby(by_list, sort=True, dropna=False, observed=True)
    for key, idx in grouped.indices.items():
        v = values[np.asarray(idx)]
        v = v[~np.isnan(v)]
        row: dict[str, float] = {
            "mean": float(v.mean()) if v.size else np.nan,
            "std": float(v.std(ddof=1)) if v.size > 1 else np.nan,
            "min": float(v.min()) if v.size else np.nan,
            "max": float(v.max()) if v.size else np.nan,
            "count": int(v.size),
        }
        if with_gmean:
            row["gmean"] = float(np.exp(np.log(v).mean())) if v.size and np.all(v > 0) else np.nan
        keys.append(key)
        rows.append(row)

    if len(by_list) == 1:
        index = pd.Index([k[0] if isinstance(k, tuple) else k for k in keys], name=by_list[0])
    else:
        index = pd.MultiIndex.from_tuples(keys, names=by_list)
    columns = ["mean", "std", "min", "max", "count"] + (["gmean"] if with_gmean else [])
    out = pd.DataFrame(rows, index=index, columns=columns)
    out["count"] = out["count"].astype(int)
    try:
        out = out.sort_index()
    except TypeError:  # keys of mixed types: keep pandas' grouping order
        pass
    return out


# --------------------------------------------------------------------------------------------
# Factorial effects
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Effect:
    """An estimated factorial effect with its percentile-bootstrap confidence interval.

    ``factor`` is a factor name (``"net.depth"``) or two joined by ``" × "`` for an interaction;
    ``contrast`` is ``"<level> vs <baseline level>"`` for a main effect, ``"interaction"`` for an
    interaction.
    """

    factor: str
    contrast: str
    estimate: float
    ci: tuple[float, float]


@dataclass(frozen=True)
class _Cells:
    """The design cells of a study: level codes per cell and per-cell (bootstrap) means."""

    factors: list[str]
    levels: list[list[Any]]  # levels of each factor, in order of appearance
    codes: np.ndarray  # (n_cells, n_factors) level index of each factor in each cell
    means: np.ndarray  # (n_cells,) cell means of the response
    boot: np.ndarray  # (n_cells, n_boot) bootstrap cell means


def _design_cells(
    df: pd.DataFrame, factors: list[str], response: str, n_boot: int, seed: int, who: str
) -> _Cells:
    _check_columns(df, [*factors, response], who)
    if not factors:
        raise ValueError(f"{who}: give at least one factor")
    if len(set(factors)) != len(factors):
        raise ValueError(f"{who}: factors repeat: {factors}")
    if n_boot < 1:
        raise ValueError(f"{who}: n_boot must be at least 1, got {n_boot}")
    y_all = pd.to_numeric(df[response], errors="raise").to_numpy(dtype=float)
    keep = ~np.isnan(y_all)
    if not keep.any():
        raise ValueError(f"{who}: the response {response!r} has no values (all missing)")
    data = df.loc[keep]
    y = y_all[keep]

    levels: list[list[Any]] = []
    cols = []
    for f in factors:
        c, uniq = pd.factorize(data[f], use_na_sentinel=False)
        cols.append(c)
        levels.append(list(uniq))
    row_codes = np.column_stack(cols)
    codes, inverse = np.unique(row_codes, axis=0, return_inverse=True)
    inverse = np.asarray(inverse).ravel()
    counts = np.bincount(inverse, minlength=len(codes))
    means = np.bincount(inverse, weights=y, minlength=len(codes)) / counts

    # Bootstrap: resample the runs (seeds) of each cell with replacement, independently per cell.
    rng = np.random.default_rng(seed)
    boot = np.empty((len(codes), n_boot))
    order = np.argsort(inverse, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)])
    for c in range(len(codes)):
        yc = y[order[starts[c] : starts[c + 1]]]
        draws = rng.integers(0, yc.size, size=(n_boot, yc.size))
        boot[c] = yc[draws].mean(axis=1)
    return _Cells(list(factors), levels, codes, means, boot)


def _baseline_index(levels: list[Any], factor: str, baseline: dict | None, who: str) -> int:
    if baseline is None or factor not in baseline:
        return 0
    want = baseline[factor]
    for i, lv in enumerate(levels):
        if _same(lv, want):
            return i
    for i, lv in enumerate(levels):  # "8" for 8, "True" for True
        if str(lv) == str(want):
            return i
    raise ValueError(
        f"{who}: baseline level {want!r} of {factor!r} does not occur in the data; "
        f"levels are {[_label(lv) for lv in levels]}"
    )


def _percentile_ci(boot: np.ndarray, level: float) -> tuple[float, float]:
    lo, hi = np.quantile(boot, [0.5 - level / 2, 0.5 + level / 2])
    return float(lo), float(hi)


def _effect(cells: _Cells, weights: np.ndarray, level: float, factor: str, contrast: str) -> Effect:
    return Effect(
        factor=factor,
        contrast=contrast,
        estimate=float(weights @ cells.means),
        ci=_percentile_ci(weights @ cells.boot, level),
    )


def _mean_weights(mask: np.ndarray) -> np.ndarray:
    """Weights that average the cell means of the cells in ``mask`` (each cell counts once)."""
    return mask / mask.sum()


def main_effects(
    df: pd.DataFrame,
    factors: list[str],
    response: str,
    *,
    baseline: dict | None = None,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> list[Effect]:
    """Main effects of each factor, level by level, against its baseline level.

    For factor ``F`` and level ``l``: ``ȳ(F = l) - ȳ(F = b)``, where ``ȳ(F = l)`` is the mean of
    the design-cell means with ``F = l`` (each cell counts once, so a cell that lost a run keeps
    its weight) and so averages over the other factors as the data lie. In a full factorial or a
    regular fraction that is balanced; elsewhere the contrast also carries the imbalance of the
    other factors. The baseline ``b`` is ``baseline[F]`` if given, else ``F``'s first level in
    order of appearance.

    The interval is a percentile bootstrap: the runs (seeds) of every design cell are resampled
    with replacement, the contrast recomputed ``n_boot`` times and the ``(1 ± level)/2``
    quantiles taken. A cell with one run contributes no sampling spread.

    Returns effects in the order of ``factors``, levels in order of appearance; a factor with a
    single level gives none.
    """
    _check_level(level)
    cells = _design_cells(df, factors, response, n_boot, seed, "main_effects")
    out = []
    for j, f in enumerate(factors):
        lv = cells.levels[j]
        b = _baseline_index(lv, f, baseline, "main_effects")
        base = _mean_weights(cells.codes[:, j] == b)
        for i in range(len(lv)):
            if i == b:
                continue
            w = _mean_weights(cells.codes[:, j] == i) - base
            out.append(_effect(cells, w, level, f, f"{_label(lv[i])} vs {_label(lv[b])}"))
    return out


def interactions(
    df: pd.DataFrame,
    factors: list[str],
    response: str,
    *,
    baseline: dict | None = None,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> list[Effect]:
    """Two-way interaction contrasts of every pair of two-level factors.

    With ``−`` the baseline level (``baseline[F]``, else the first in order of appearance) and
    ``+`` the other one, the contrast of ``A`` and ``B`` is

        ``½ [(ȳ_{A+,B+} − ȳ_{A−,B+}) − (ȳ_{A+,B−} − ȳ_{A−,B−})]``,

    half the difference of the simple effects of ``A`` at the two levels of ``B`` (symmetric in
    ``A`` and ``B``). This is the classical factorial "effect" convention (Box, Hunter & Hunter):
    it is on the scale of the main effects, and equals ``2 β_AB`` in the ``±1``-coded regression
    ``y = β₀ + β_A x_A + β_B x_B + β_AB x_A x_B``. For ``y = … + γ [A+][B+]`` it is ``γ / 2``.
    ``ȳ_{A,B}`` averages the design-cell means with those levels, as in ``main_effects``;
    the interval is the same within-cell bootstrap.

    Pairs where a factor has more than two levels are skipped (draw an interaction plot from
    ``interaction_table`` instead), as are pairs with an empty one of the four cells. In a
    resolution-III fraction a two-way interaction is aliased with a main effect.
    """
    _check_level(level)
    cells = _design_cells(df, factors, response, n_boot, seed, "interactions")
    out = []
    for ja, jb in itertools.combinations(range(len(factors)), 2):
        la, lb = cells.levels[ja], cells.levels[jb]
        if len(la) != 2 or len(lb) != 2:
            continue
        a_minus = _baseline_index(la, factors[ja], baseline, "interactions")
        b_minus = _baseline_index(lb, factors[jb], baseline, "interactions")
        a_is = {s: cells.codes[:, ja] == (a_minus if s < 0 else 1 - a_minus) for s in (-1, 1)}
        b_is = {s: cells.codes[:, jb] == (b_minus if s < 0 else 1 - b_minus) for s in (-1, 1)}
        masks = {(sa, sb): a_is[sa] & b_is[sb] for sa in (-1, 1) for sb in (-1, 1)}
        if any(not m.any() for m in masks.values()):
            continue
        w = 0.5 * sum(sa * sb * _mean_weights(m) for (sa, sb), m in masks.items())
        out.append(_effect(cells, w, level, f"{factors[ja]}{TIMES}{factors[jb]}", "interaction"))
    return out


def interaction_table(df: pd.DataFrame, a: str, b: str, response: str) -> pd.DataFrame:
    """Mean of ``response`` per combination of levels: rows are the levels of ``a``, columns the
    levels of ``b`` (each sorted when the levels can be ordered, else in order of appearance).

    Each entry averages every run with those two levels (over seeds and the other factors); a
    combination without runs is NaN. Missing responses are skipped.
    """
    _check_columns(df, [a, b, response], "interaction_table")
    if a == b:
        raise ValueError(f"interaction_table: give two different factors, got {a!r} twice")
    data = pd.DataFrame(
        {
            "a": df[a].to_numpy(),
            "b": df[b].to_numpy(),
            "y": pd.to_numeric(df[response], errors="raise").to_numpy(dtype=float),
        }
    )
    means = data.groupby(["a", "b"], sort=False, dropna=False, observed=True)["y"].mean()
    table = means.unstack("b")
    table = table.reindex(index=_ordered(data["a"]), columns=_ordered(data["b"]))
    table.index.name = a
    table.columns.name = b
    return table


# --------------------------------------------------------------------------------------------
# Analysis of variance
# --------------------------------------------------------------------------------------------


def anova(
    df: pd.DataFrame, factors: list[str], response: str, *, interactions: bool = True
) -> pd.DataFrame:
    """Type-II analysis of variance of ``response`` on categorical factors.

    Fits ``y ~ C(A) + C(B) + … [+ C(A):C(B) + …]`` by ordinary least squares (statsmodels; the
    factor columns are passed under plain aliases, which avoids quoting dotted names with
    ``Q()``). All two-way interactions are included when ``interactions`` is true, the design
    matrix is full rank and at least one residual degree of freedom is left; otherwise the model
    has main effects only. ``table.attrs["model"]`` says which (``"main effects + two-way
    interactions"`` or ``"main effects"``), ``attrs["formula"]`` gives the formula in the real
    names and ``attrs["dropped"]`` the factors left out for having a single level in ``df``.

    Type-II sum of squares of a term ``T``: ``SS(T) = RSS(M_T) − RSS(M_T + T)``, with ``M_T`` the
    model's terms that do not contain ``T`` (``statsmodels.stats.anova.anova_lm(typ=2)``);
    ``F = (SS(T)/df_T) / (RSS/df_resid)``. When main effects alone already leave no residual
    degree of freedom (a saturated fraction with one seed), the sums of squares are computed
    from the same definition and ``F`` and ``p_value`` are NaN.

    Returns a table indexed by term (``"net.depth"``, ``"net.depth × net.width"``,
    ``"residual"``) with columns ``sum_sq``, ``df``, ``F``, ``p_value`` and ``share =
    sum_sq / Σ sum_sq`` (the sum over the table, residual included, so the shares sum to 1; in a
    balanced design Σ sum_sq is the corrected total sum of squares), sorted by share descending
    with the residual last. Runs with a missing response are left out.

    Raises ``ValueError`` when even the main-effects model is rank deficient (confounded factors)
    or has more parameters than runs.
    """
    import statsmodels.formula.api as smf
    from statsmodels.stats.anova import anova_lm

    _check_columns(df, [*factors, response], "anova")
    if len(set(factors)) != len(factors):
        raise ValueError(f"anova: factors repeat: {factors}")
    y_all = pd.to_numeric(df[response], errors="raise").to_numpy(dtype=float)
    keep = ~np.isnan(y_all)
    data = df.loc[keep]
    y = y_all[keep]
    n = y.size
    if n < 2:
        raise ValueError(f"anova: need at least 2 runs with a value of {response!r}, got {n}")

    used: list[str] = []
    dropped: list[str] = []
    codes: list[np.ndarray] = []
    for f in factors:
        c, uniq = pd.factorize(data[f], use_na_sentinel=False)
        if len(uniq) < 2:
            dropped.append(f)
            continue
        used.append(f)
        codes.append(c)
    alias = {f: f"f{i}" for i, f in enumerate(used)}

    # Terms with their design-matrix blocks (treatment coding against the first level).
    dummies = {f: _dummies(c) for f, c in zip(used, codes, strict=True)}
    main_terms = [(f,) for f in used]
    pair_terms = list(itertools.combinations(used, 2))

    def blocks(terms: list[tuple[str, ...]]) -> list[np.ndarray]:
        out = []
        for t in terms:
            if len(t) == 1:
                out.append(dummies[t[0]])
            else:
                da, db = dummies[t[0]], dummies[t[1]]
                out.append((da[:, :, None] * db[:, None, :]).reshape(n, -1))
        return out

    def full_rank(terms: list[tuple[str, ...]]) -> tuple[bool, int]:
        x = np.column_stack([np.ones(n), *blocks(terms)])
        return bool(np.linalg.matrix_rank(x) == x.shape[1]), n - x.shape[1]

    terms = main_terms
    model = "main effects"
    if interactions and pair_terms:
        ok, resid_df = full_rank(main_terms + pair_terms)
        if ok and resid_df >= 1:
            terms = main_terms + pair_terms
            model = "main effects + two-way interactions"
    ok, resid_df = full_rank(terms)
    if resid_df < 0:
        raise ValueError(
            f"anova: {n} runs are too few for the main effects of {used} "
            f"({n - resid_df} parameters); add runs or drop factors"
        )
    if not ok:
        raise ValueError(
            f"anova: the main effects of {used} are confounded in this design (the design matrix "
            "is rank deficient); drop one of the confounded factors"
        )

    def name(t: tuple[str, ...]) -> str:
        return TIMES.join(t)

    if not terms:  # no factor varies: everything is residual
        dev = y - y.mean()
        table = pd.DataFrame(
            {"sum_sq": [float(dev @ dev)], "df": [float(n - 1)], "F": np.nan, "p_value": np.nan},
            index=pd.Index(["residual"], name="term"),
        )
    elif resid_df >= 1:
        frame = pd.DataFrame({alias[f]: c for f, c in zip(used, codes, strict=True)})
        frame["y"] = y
        rhs = [":".join(f"C({alias[f]})" for f in t) for t in terms]
        with np.errstate(divide="ignore", invalid="ignore"):  # an exact fit gives F = inf
            fit = smf.ols("y ~ " + " + ".join(rhs), data=frame).fit()
            raw = anova_lm(fit, typ=2)
        by_formula = {r: name(t) for r, t in zip(rhs, terms, strict=True)}
        by_formula["Residual"] = "residual"
        if set(raw.index) - set(by_formula):
            raise RuntimeError(f"anova: unexpected terms from statsmodels: {list(raw.index)}")
        table = pd.DataFrame(
            {
                "sum_sq": raw["sum_sq"].to_numpy(dtype=float),
                "df": raw["df"].to_numpy(dtype=float),
                "F": raw["F"].to_numpy(dtype=float),
                "p_value": raw["PR(>F)"].to_numpy(dtype=float),
            },
            index=pd.Index([by_formula[r] for r in raw.index], name="term"),
        )
    else:  # saturated: SS by the type-II definition, no error estimate
        ss = _type2_ss(y, terms, blocks(terms))
        rows = {
            name(t): (s, float(b.shape[1]))
            for t, s, b in zip(terms, ss, blocks(terms), strict=True)
        }
        rows["residual"] = (0.0, 0.0)
        table = pd.DataFrame(
            {
                "sum_sq": [v[0] for v in rows.values()],
                "df": [v[1] for v in rows.values()],
                "F": np.nan,
                "p_value": np.nan,
            },
            index=pd.Index(list(rows), name="term"),
        )

    total = float(table["sum_sq"].sum())
    # a constant response leaves only rounding noise to share out: no shares then
    table["share"] = table["sum_sq"] / total if total > 1e-20 * float(y @ y) else np.nan
    effects = table.drop(index="residual").sort_values("share", ascending=False, kind="stable")
    table = pd.concat([effects, table.loc[["residual"]]])
    table.index.name = "term"
    table.attrs["model"] = model
    table.attrs["formula"] = f"{response} ~ " + (" + ".join(name(t) for t in terms) or "1")
    table.attrs["dropped"] = dropped
    return table


def _dummies(codes: np.ndarray) -> np.ndarray:
    """Treatment-coded indicator columns of levels 1, 2, … (level 0 is the reference)."""
    k = int(codes.max()) + 1
    return (codes[:, None] == np.arange(1, k)[None, :]).astype(float)


def _type2_ss(
    y: np.ndarray, terms: Sequence[tuple[str, ...]], blocks: Sequence[np.ndarray]
) -> list[float]:
    """Type-II sums of squares by definition: ``RSS(terms not containing T) − RSS(… + T)``."""
    ones = np.ones((y.size, 1))

    def rss(cols: list[np.ndarray]) -> float:
        x = np.column_stack([ones, *cols])
        beta, *_ = np.linalg.lstsq(x, y, rcond=None)
        r = y - x @ beta
        return float(r @ r)

    out = []
    for t in terms:
        base = [b for u, b in zip(terms, blocks, strict=True) if not set(t) <= set(u)]
        own = blocks[list(terms).index(t)]
        out.append(max(rss(base) - rss([*base, own]), 0.0))
    return out


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _as_list(by: str | Sequence[str]) -> list[str]:
    return [by] if isinstance(by, str) else list(by)


def _check_columns(df: pd.DataFrame, columns: Sequence[str], who: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(
            f"{who}: no column {', '.join(map(repr, missing))} in the study; "
            f"columns are {list(map(str, df.columns))}"
        )


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level must lie strictly between 0 and 1 (e.g. 0.95), got {level}")


def _same(a: Any, b: Any) -> bool:
    if pd.isna(a) and pd.isna(b):
        return True
    try:
        eq = a == b
    except (TypeError, ValueError):
        return False
    return isinstance(eq, (bool, np.bool_)) and bool(eq)


def _label(level: Any) -> str:
    """A level as text: numpy scalars as plain Python values (``8``, not ``np.int64(8)``)."""
    return str(level.item() if isinstance(level, np.generic) else level)


def _ordered(values: pd.Series) -> list[Any]:
    """Distinct values, sorted when they can be, else in order of appearance."""
    uniq = list(pd.unique(values))
    try:
        return sorted(uniq)
    except TypeError:
        return uniq
