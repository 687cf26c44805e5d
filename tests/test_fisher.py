import re

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from specvit_core import fisher as F
from specvit_core.data import lock_test_split, read_split
from specvit_core.instrument import mr_wavelength
from specvit_core.noise import draw_conditions, median_normalize, observe
from specvit_core.simulate import generate_dataset
from specvit_core.spectra.embedded import embedded_grid
from specvit_core.spectra.templates import TemplateGrid

N_PIX = 400


@pytest.fixture
def linear_model():
    """Linear-Gaussian spectrum f = A theta with 3 parameters whose Jacobian columns are correlated."""
    rng = np.random.default_rng(0)
    base = rng.normal(size=(N_PIX, 1))
    A = np.hstack([base + 0.5 * rng.normal(size=(N_PIX, 1)),  # column 0 and 2 share `base`: degenerate-ish
                   rng.normal(size=(N_PIX, 1)),
                   base + 0.7 * rng.normal(size=(N_PIX, 1))])
    sigma = rng.uniform(0.5, 2.0, N_PIX)  # heteroscedastic
    return A, sigma


def test_fisher_matrix_is_weighted_gram_matrix(linear_model):
    A, sigma = linear_model
    expected = A.T @ np.diag(1 / sigma**2) @ A
    np.testing.assert_allclose(F.fisher_matrix(A, sigma), expected, rtol=1e-12)


def test_marginal_crlb_is_inverse_fisher_diagonal_and_exceeds_conditional(linear_model):
    A, sigma = linear_model
    cov = np.linalg.inv(A.T @ np.diag(1 / sigma**2) @ A)  # closed-form CRLB of the linear-Gaussian model
    info = np.linalg.inv(cov)
    for g in range(3):
        marginal = F.marginal_crlb(A, sigma, g)
        assert marginal == pytest.approx(cov[g, g], rel=1e-10)
        assert F.conditional_crlb(A, sigma, g) == pytest.approx(1 / info[g, g], rel=1e-10)
        assert F.schur_decay(A, sigma, g) == pytest.approx(1 / (info[g, g] * cov[g, g]), rel=1e-10)
    assert F.marginal_crlb(A, sigma, 0) > 1.5 * F.conditional_crlb(A, sigma, 0)  # the Schur complement matters


def test_marginal_crlb_is_attained_by_weighted_least_squares(linear_model):
    A, sigma = linear_model
    rng = np.random.default_rng(1)
    theta = np.array([0.3, -1.0, 2.0])
    spectra = A @ theta + sigma * rng.normal(size=(3000, N_PIX))  # (n_real, n_pix)
    fits = np.linalg.lstsq(A / sigma[:, None], (spectra / sigma).T, rcond=None)[0]  # (3, n_real)
    assert np.var(fits[0]) == pytest.approx(F.marginal_crlb(A, sigma, 0), rel=0.1)


def test_batched_over_leading_axes(linear_model):
    A, sigma = linear_model
    rng = np.random.default_rng(2)
    J = A * rng.uniform(0.5, 2.0, size=(2, 4, 1, 3))  # (2, 4, n_pix, 3): one Jacobian per "grid point"
    batched = F.marginal_crlb(J, sigma, 1)
    assert batched.shape == (2, 4)
    for i, j in np.ndindex(2, 4):
        assert batched[i, j] == pytest.approx(F.marginal_crlb(J[i, j], sigma, 1), rel=1e-12)
    assert F.fisher_matrix(J, np.broadcast_to(sigma, (2, 4, N_PIX))).shape == (2, 4, 3, 3)


def test_scaling_laws_and_unit_invariance(linear_model):
    A, sigma = linear_model
    base = F.marginal_crlb(A, sigma, 0)
    assert F.marginal_crlb(A, 2 * sigma, 0) == pytest.approx(4 * base, rel=1e-12)  # CRLB ~ sigma^2
    doubled = F.marginal_crlb(np.vstack([A, A]), np.concatenate([sigma, sigma]), 0)
    assert doubled == pytest.approx(base / 2, rel=1e-12)  # twice the pixels, half the variance
    rescaled = A * np.array([1.0, 1e3, 1e-2])  # nuisance parameters in other units (K versus dex)
    assert F.marginal_crlb(rescaled, sigma, 0) == pytest.approx(base, rel=1e-10)
    assert F.schur_decay(A, 3 * sigma, 0) == pytest.approx(F.schur_decay(A, sigma, 0), rel=1e-12)


def test_schur_decay_limits(linear_model):
    A, sigma = linear_model
    rho = F.schur_decay(A, sigma, 0)
    assert 0 < rho < 1
    assert rho == pytest.approx(F.conditional_crlb(A, sigma, 0) / F.marginal_crlb(A, sigma, 0))
    q, _ = np.linalg.qr(A / sigma[:, None])  # orthogonal in the noise-weighted metric
    assert F.schur_decay(q * sigma[:, None], sigma, 0) == pytest.approx(1.0, rel=1e-10)
    assert F.schur_decay(A[:, :1], sigma, 0) == 1.0  # no nuisance parameters
    degenerate = np.hstack([A[:, :2], A[:, :1] + A[:, 1:2]])  # parameter 2 is a combination of 0 and 1
    assert F.schur_decay(degenerate, sigma, 2) == pytest.approx(0.0, abs=1e-9)


def test_r2_ceiling_clips_to_unit_interval():
    out = F.r2_ceiling(np.array([0.0, 0.25, 1.0, 3.0, np.inf]), 1.0)
    np.testing.assert_allclose(out, [1.0, 0.75, 0.0, 0.0, 0.0])
    assert F.r2_ceiling(0.1, 0.4) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="label_variance, 0.0, must be positive"):
        F.r2_ceiling(0.1, 0.0)
    with pytest.raises(ValueError, match="crlb must be non-negative and not NaN; got 2 bad"):
        F.r2_ceiling([np.nan, -1.0, 0.5], 1.0)


def test_central_difference_is_exact_for_quadratic_model():
    rng = np.random.default_rng(3)
    n_params, n_pix = 3, 50
    Q = rng.normal(size=(n_pix, n_params, n_params))
    Q = Q + np.swapaxes(Q, 1, 2)  # symmetric per pixel
    b = rng.normal(size=(n_pix, n_params))

    def model(theta):  # (M, 3) -> (M, n_pix): f_p = theta^T Q_p theta + b_p . theta + 1
        return np.einsum("mi,pij,mj->mp", theta, Q, theta) + theta @ b.T + 1.0

    params = rng.uniform(-2, 2, size=(7, n_params))
    J = F.jacobian_central_difference(model, params, steps=[0.5, 0.1, 1.0])
    exact = 2 * np.einsum("pij,mj->mpi", Q, params) + b  # (N, n_pix, n_params)
    assert J.shape == (7, n_pix, n_params)
    np.testing.assert_allclose(J, exact, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("J, sigma, match", [
    (np.ones(5), np.ones(5), r"J must have shape \(..., n_pix, n_params\); got shape \(5,\)"),
    (np.ones((5, 2)), np.ones(4), r"sigma of shape \(4,\) must broadcast to J.shape\[:-1\] = \(5,\)"),
    (np.ones((5, 2)), np.zeros(5), "sigma must be positive and finite"),
    (np.full((5, 2), np.nan), np.ones(5), "J contains 10 NaN/inf values"),
])
def test_fisher_matrix_rejects_bad_input(J, sigma, match):
    with pytest.raises(ValueError, match=match):
        F.fisher_matrix(J, sigma)


def test_crlb_rejects_bad_index_and_degenerate_problems(linear_model):
    A, sigma = linear_model
    with pytest.raises(ValueError, match=r"index, 3, must be an integer in \[0, 3\)"):
        F.marginal_crlb(A, sigma, 3)
    with pytest.raises(ValueError, match=r"parameters \[1\] have zero Fisher information"):
        F.marginal_crlb(A * [1.0, 0.0, 1.0], sigma, 0)
    singular = np.hstack([A, A[:, 1:2] - A[:, 2:3]])  # nuisances 1, 2, 3 linearly dependent
    with pytest.raises(ValueError, match=r"nuisance block of the Fisher matrix is singular"):
        F.marginal_crlb(singular, sigma, 0)


def test_central_difference_rejects_bad_input():
    def model(theta):
        return theta @ np.ones((2, 10))

    with pytest.raises(ValueError, match=r"params must have shape \(N, n_params\)"):
        F.jacobian_central_difference(model, np.ones(2), [0.1, 0.1])
    with pytest.raises(ValueError, match="steps must hold 2 positive finite values"):
        F.jacobian_central_difference(model, np.ones((3, 2)), [0.1, 0.0])
    with pytest.raises(ValueError, match=r"for M = 6 it returned shape \(10,\)"):
        F.jacobian_central_difference(lambda t: np.ones(10), np.ones((3, 2)), [0.1, 0.1])


# ---------------------------------------------------------------------------------------------------------------
# The ceiling of the simulated spectra

@pytest.fixture(scope="module")
def fine_grid():
    """A small embedded grid with uniform steps on every axis (1.5 x the paper's T_eff step of the ceiling grid),
    finer in log g and [M/H] than conftest's ``small_grid``; synthesized once and cached in data/cache."""
    axes = {"T_eff": np.arange(4000.0, 5001.0, 250.0), "log_g": np.arange(1.5, 4.01, 0.5),
            "M_H": np.arange(-1.0, 0.51, 0.25)}
    return embedded_grid(axes=axes, progress=False)


def test_finite_difference_and_exact_jacobians_obey_the_spline_identity(fine_grid):
    # For a C2 cubic spline on uniform nodes, (s'_{i-1} + 4 s'_i + s'_{i+1}) / 6 = (y_{i+1} - y_{i-1}) / (2h) at
    # every interior node: the central difference of eq. J.1 is a smoothed copy of the exact derivative, and the
    # two differ by exactly -(s'_{i-1} - 2 s'_i + s'_{i+1}) / 6, i.e. only where the derivative itself curves.
    axes = fine_grid.axes
    _, _, fd = F.normalized_jacobian(fine_grid, axes, "finite_difference")
    _, _, exact = F.normalized_jacobian(fine_grid, axes, "exact")
    shape = tuple(len(axes[a]) for a in F.AXES) + fd.shape[1:]
    fd, exact = fd.reshape(shape), exact.reshape(shape)
    for k in range(3):
        s = np.moveaxis(exact[..., k], k, 0)
        d = np.moveaxis(fd[..., k], k, 0)
        smoothed = (s[:-2] + 4 * s[1:-1] + s[2:]) / 6
        np.testing.assert_allclose(smoothed, d[1:-1], rtol=0, atol=1e-9 * np.abs(d).max())


def test_finite_difference_and_exact_ceilings_agree_where_the_grid_is_smooth(fine_grid):
    # Smooth: the exact Jacobian's relative second difference kappa along every axis is <= 0.5 (noise-weighted).
    # By the identity above, the column mismatch eps = |J_fd - J_exact| / |J_exact| is then kappa / 6 <= 0.08.
    # To first order the log g residual after marginalization, of norm sqrt(rho) |J_g|, moves by <= eps |J_g|, so
    # the marginal information (a squared norm) and the CRLB move by <= 2 eps / sqrt(rho): that is the tolerance.
    axes = fine_grid.axes
    _, _, fd = F.normalized_jacobian(fine_grid, axes, "finite_difference")
    _, _, exact = F.normalized_jacobian(fine_grid, axes, "exact")
    sigma, _ = F.normalized_sigma(fine_grid, axes, 21.5)
    shape = tuple(len(axes[a]) for a in F.AXES)
    kappa = np.zeros(fd.shape[:1] + (3,))
    for k in range(3):
        d = np.moveaxis((exact[..., k] / sigma).reshape(shape + (-1,)), k, 0)
        curve = np.full(d.shape[:-1], np.inf)  # edges: no second difference, never counted as smooth
        curve[1:-1] = np.linalg.norm(d[:-2] - 2 * d[1:-1] + d[2:], axis=-1) / np.linalg.norm(d[1:-1], axis=-1)
        kappa[:, k] = np.moveaxis(curve, 0, k).ravel()
    smooth = np.all(kappa <= 0.5, axis=1)
    # enough smooth interior points to test on: with the LTE templates 15 of the 60 interior points have kappa <= 0.5
    # on every axis (median kappa along T_eff 0.51, log g 0.32, [M/H] 0.25 at 250 K / 0.5 / 0.25 dex steps)
    assert smooth.sum() >= 10
    eps = F.jacobian_mismatch(fd, exact, sigma)[smooth].max(axis=1)
    rho = F.schur_decay(exact[smooth], sigma[smooth], 1)
    crlb_fd, crlb_exact = (F.marginal_crlb(j[smooth], sigma[smooth], 1) for j in (fd, exact))
    assert np.all(np.abs(crlb_fd / crlb_exact - 1) <= 2 * eps / np.sqrt(rho))
    assert np.all(eps <= 0.5 / 6 + 0.01)


def test_ceiling_falls_with_magnitude_and_matches_the_pointwise_bound(fine_grid):
    axes = F.ceiling_axes(fine_grid, ranges={"T_eff": (4250, 4750), "log_g": (2, 3), "M_H": (-0.5, 0)})
    points = F.ceiling_points(fine_grid, mags=(20.0, 22.0), axes=axes, method="exact", label_variance=4 / 3)
    bright, faint = (points[points.mag == m].reset_index(drop=True) for m in (20.0, 22.0))
    assert np.all(faint.crlb > bright.crlb) and np.all(faint.r2_max <= bright.r2_max)
    assert np.all(faint.snr < bright.snr)
    cond = {k: np.full(len(faint), v) for k, v in F.MEDIAN_CONDITIONS.items()}
    direct = F.pointwise_crlb(fine_grid, faint[list(F.AXES)].to_numpy(), faint.mag.to_numpy(), cond)
    np.testing.assert_allclose(direct, faint.crlb, rtol=1e-6)
    table = F.ceiling_table(points)
    assert list(table.mag) == [20.0, 22.0] and np.all(table.r2_max_p10 <= table.r2_max_p90)


def test_ceiling_helpers_reject_bad_input(fine_grid):
    with pytest.raises(ValueError, match="stride, 0, must be a positive integer"):
        F.ceiling_axes(fine_grid, stride=0)
    with pytest.raises(ValueError, match=r"the log_g range \(4.5, 5\) holds no node"):
        F.ceiling_axes(fine_grid, ranges={"log_g": (4.5, 5.0), "T_eff": (4000, 5000), "M_H": (-1, 0)})
    with pytest.raises(ValueError, match="method, 'spline', must be one of"):
        F.normalized_jacobian(fine_grid, fine_grid.axes, "spline")
    with pytest.raises(ValueError, match="are not all nodes of the grid"):
        F.normalized_jacobian(fine_grid, {**fine_grid.axes, "log_g": np.array([2.25])})
    points = F.ceiling_points(fine_grid, mags=(21.0,), axes=F.ceiling_axes(fine_grid, stride=4))
    with pytest.raises(ValueError, match=r"mag, 22.0, is not one of the magnitudes of points: \[21.0\]"):
        F.ceiling_map(points, 22.0)


# ---------------------------------------------------------------------------------------------------------------
# The per-star ceiling

LINEAR_AXES = {"T_eff": np.arange(4000.0, 5001.0, 250.0), "log_g": np.arange(1.0, 5.01, 1.0),
               "M_H": np.arange(-1.0, 0.51, 0.5)}


@pytest.fixture(scope="module")
def linear_lines():
    """Line depths ``a`` (n_pix, 3) of a spectrum linear in the labels, ``f = 1 - a u`` with ``u`` the labels scaled
    to [0, 1] over LINEAR_AXES: three overlapping line sets on 1500 of the 4096 pixels, so that more than half of
    the pixels are continuum at exactly 1 and the median of every spectrum is 1 (normalization leaves it linear)."""
    rng = np.random.default_rng(5)
    a = np.zeros((4096, 3))
    lines = rng.permutation(4096)[:1500]
    for k, part in enumerate((lines[:700], lines[400:1100], lines[800:])):  # overlaps correlate the columns
        a[part, k] = rng.uniform(0.05, 0.3, part.size)
    return a


def _linear_flux(a, labels):
    """The linear spectrum ``1 - a u(labels)`` (N, n_pix) and its Jacobian d f / d labels (n_pix, 3)."""
    lo = np.array([LINEAR_AXES[k][0] for k in F.AXES])
    span = np.array([LINEAR_AXES[k][-1] for k in F.AXES]) - lo
    return 1.0 - ((labels - lo) / span) @ a.T, -a / span


@pytest.fixture(scope="module")
def linear_grid(linear_lines):
    """A float64 TemplateGrid whose nodes hold the linear spectrum: its spline interpolant is the linear model."""
    nodes = F.node_labels(LINEAR_AXES)
    flux = _linear_flux(linear_lines, nodes)[0].reshape(*(len(LINEAR_AXES[k]) for k in F.AXES), -1)
    return TemplateGrid(axes=LINEAR_AXES, wave=mr_wavelength(), flux=flux, continuum=np.ones_like(flux),
                        meta={"model": "linear"})


def _linear_stars(n, seed):
    """Labels, magnitudes and observing conditions of ``n`` stars drawn inside LINEAR_AXES."""
    rng = np.random.default_rng(seed)
    labels = np.stack([rng.uniform(LINEAR_AXES[k][0], LINEAR_AXES[k][-1], n) for k in F.AXES], axis=1)
    return labels, rng.uniform(20.5, 22.5, n), draw_conditions(rng, n)


def test_pointwise_crlb_equals_the_closed_form_inverse_fisher_element_of_a_linear_model(linear_lines, linear_grid):
    labels, mags, conditions = _linear_stars(50, seed=6)
    flux, jac = _linear_flux(linear_lines, labels)
    sigma = median_normalize(*observe(mr_wavelength(), flux, mags, conditions))[1]  # median 1: x = f
    fisher = np.einsum("pi,np,pj->nij", jac, 1 / sigma**2, jac)  # J^T Sigma^-1 J of every star
    closed_form = np.linalg.inv(fisher)[:, F.LOGG, F.LOGG]
    bound = F.pointwise_crlb(linear_grid, labels, mags, conditions, chunk=16)  # chunks of uneven size
    np.testing.assert_allclose(bound, closed_form, rtol=1e-9)
    assert np.ptp(np.log(bound)) > 1  # the stars' own noise matters: bounds spread over more than a factor e
    with pytest.raises(ValueError, match=r"mags of shape \(49,\) must be a scalar or hold one value per spectrum"):
        F.pointwise_crlb(linear_grid, labels, mags[:-1], conditions)
    with pytest.raises(ValueError, match="chunk, 0, must be a positive integer"):
        F.pointwise_crlb(linear_grid, labels, mags, conditions, chunk=0)


def test_efficient_estimator_of_a_linear_model_gives_standard_normal_z(linear_lines, linear_grid):
    # Generalized least squares is the efficient estimator of a linear-Gaussian model: its log g residual is
    # N(0, CRLB) for every star, so z = residual / sigma_CRLB is N(0, 1) and the network-free R^2 equals the ceiling.
    n = 4000
    labels, mags, conditions = _linear_stars(n, seed=7)
    flux, jac = _linear_flux(linear_lines, labels)
    sigma = median_normalize(*observe(mr_wavelength(), flux, mags, conditions))[1]
    observed = flux + sigma * np.random.default_rng(8).normal(size=flux.shape)
    # f = 1 + J (theta - lo): the GLS estimate (J^T W J)^-1 J^T W (x - 1) + lo from the observed spectrum alone
    lo = np.array([LINEAR_AXES[k][0] for k in F.AXES])
    fisher = np.einsum("pi,np,pj->nij", jac, 1 / sigma**2, jac)
    estimate = lo + np.linalg.solve(fisher, np.einsum("pi,np->ni", jac, (observed - 1) / sigma**2)[..., None])[..., 0]
    stars = pd.DataFrame(dict(zip(F.AXES, labels.T)) | {"mag": mags})
    crlb = F.pointwise_crlb(linear_grid, labels, mags, conditions)
    table = F.star_ceiling(stars.assign(true=labels[:, F.LOGG], pred=estimate[:, F.LOGG]),
                           stars.rename_axis("row").assign(crlb=crlb, sigma_crlb=np.sqrt(crlb)))
    z = table.z.to_numpy()
    assert abs(z.mean()) < 4 / np.sqrt(n)  # 4 standard errors of the mean of n N(0, 1) draws
    assert abs(z.std() - 1) < 4 / np.sqrt(2 * n)  # and of their standard deviation
    share = 2 * norm.cdf(F.INFORMATION_LIMITED_K) - 1  # 0.954 of an efficient estimator's stars
    assert abs((table.limit == "information-limited").mean() - share) < 4 * np.sqrt(share * (1 - share) / n)
    overall = F.ceiling_summary(table, [20.5, 22.5]).loc[("all", "all")]
    # 1 - R^2 = mean(residual^2) / Var, 1 - R^2_max = mean(CRLB) / Var: their ratio is 1 within its sampling error
    error = 4 * np.sqrt(2 * np.sum(crlb**2)) / np.sum(crlb)
    assert abs((1 - overall.r2) / (1 - overall.r2_max) - 1) < error
    assert overall.within_1 == pytest.approx(norm.cdf(1) - norm.cdf(-1), abs=4 * np.sqrt(0.683 * 0.317 / n))


@pytest.fixture(scope="module")
def simulated_dataset(small_simulation, small_grid, tmp_path_factory):
    """A dataset simulated from conftest's small grid (30 test spectra)."""
    folder = tmp_path_factory.mktemp("crlb") / "data"
    generate_dataset(folder, small_simulation, small_grid, progress=False)
    return folder


def test_split_crlb_is_each_spectrums_own_bound_and_is_computed_once(simulated_dataset, small_grid):
    dataset = simulated_dataset
    path = F.crlb_path(dataset)
    assert path == dataset / "crlb_test.csv" and not path.exists()
    first = F.split_crlb(dataset, small_grid)
    test = read_split(dataset, "test")
    assert path.is_file() and list(first.index) == list(range(len(test)))
    np.testing.assert_array_equal(first.log_g, test.labels("log_g"))
    # the bound of each spectrum with the sigma stored beside it in the dataset (float32): its own noise
    jac = F.normalized_grid(small_grid).jacobian(test.params[list(F.AXES)].to_numpy())
    np.testing.assert_allclose(first.crlb, F.marginal_crlb(jac, test.error, F.LOGG), rtol=1e-5)  # float32: ~1e-6
    np.testing.assert_allclose(first.sigma_crlb ** 2, first.crlb, rtol=1e-12)
    edited = pd.read_csv(path, index_col="row")
    edited["crlb"] *= 2
    edited.to_csv(path)
    np.testing.assert_allclose(F.split_crlb(dataset, small_grid).crlb, 2 * first.crlb)  # read, not recomputed
    with lock_test_split(), pytest.raises(RuntimeError, match="test split is locked"):
        F.split_crlb(dataset, small_grid)


def test_split_crlb_refuses_a_stale_cache_and_another_grid(simulated_dataset, small_grid, fine_grid, tmp_path):
    dataset = tmp_path / "copy"
    dataset.mkdir()
    for name in ("manifest.json", "test.h5"):
        (dataset / name).write_bytes((simulated_dataset / name).read_bytes())
    table = F.split_crlb(dataset, small_grid)
    path = F.crlb_path(dataset)
    table.iloc[:-1].to_csv(path)
    name = re.escape(str(path))
    with pytest.raises(ValueError, match=rf"{name}' holds 29 rows .* but the test split of .* has 30 spectra"):
        F.split_crlb(dataset, small_grid)
    table.iloc[::-1].reset_index(drop=True).rename_axis("row").to_csv(path)
    with pytest.raises(ValueError, match=rf"{name}' differs from the test split .* delete the file to recompute"):
        F.split_crlb(dataset, small_grid)
    with pytest.raises(ValueError, match="simulated from another template grid"):
        F.split_crlb(dataset, fine_grid)


@pytest.fixture
def made_up():
    """Five stars with dyadic bounds and residuals (exact in floating point) and their bounds table."""
    stars = pd.DataFrame({"T_eff": 4500.0, "log_g": [1.0, 2.0, 3.0, 4.5, 4.25], "M_H": 0.0,
                          "mag": [20.6, 20.7, 21.6, 22.4, 22.5]})
    sigma = np.array([0.25, 0.25, 0.5, 0.5, 0.125])
    residual = np.array([0.125, -0.75, 0.75, -1.0, 0.5])  # z = 0.5, -3, 1.5, -2, 4
    predictions = stars.assign(true=stars.log_g, pred=stars.log_g + residual)
    return predictions, stars.rename_axis("row").assign(crlb=sigma**2, sigma_crlb=sigma)


def test_star_ceiling_classifies_made_up_residuals(made_up):
    predictions, crlb = made_up
    stars = F.star_ceiling(predictions, crlb)
    np.testing.assert_array_equal(stars.z, [0.5, -3.0, 1.5, -2.0, 4.0])
    assert list(stars.limit) == ["information-limited", "model-limited", "information-limited",
                                 "information-limited", "model-limited"]  # |z| = k = 2 counts as within
    assert list(stars.stellar_type) == ["giant", "giant", "subgiant", "dwarf", "dwarf"]
    assert list(F.star_ceiling(predictions, crlb, k=1).limit).count("information-limited") == 1
    fits = F.star_ceiling(predictions.assign(success=[True, False, True, True, False]), crlb)
    assert list(fits.index) == [0, 2, 3]  # failed fits dropped after matching; rows keep their split position


def test_ceiling_summary_of_made_up_residuals(made_up):
    summary = F.ceiling_summary(F.star_ceiling(*made_up), [20.0, 20.5, 21.5, 22.5])
    assert list(summary.index) == [("i magnitude", "[20, 20.5)"), ("i magnitude", "[20.5, 21.5)"),
                                   ("i magnitude", "[21.5, 22.5]"), ("stellar type", "giant"),
                                   ("stellar type", "subgiant"), ("stellar type", "dwarf"), ("all", "all")]
    assert summary.n.tolist() == [0, 2, 3, 2, 1, 2, 5]
    assert summary.iloc[0].drop("n").isna().all()  # an empty bin: an explicit row, no made-up number
    bright = summary.loc[("i magnitude", "[20.5, 21.5)")]  # true log g 1, 2 (Var 0.25); CRLB 1/16 each
    assert bright.r2_max == pytest.approx(1 - 0.0625 / 0.25)
    assert bright.r2 == pytest.approx(1 - (0.125**2 + 0.75**2) / 2 / 0.25)
    assert bright.ratio == pytest.approx(bright.r2 / bright.r2_max)
    assert (bright.median_abs_z, bright.within_1, bright.within_2) == (1.75, 0.5, 0.5)
    subgiant = summary.loc[("stellar type", "subgiant")]  # one star: no label variance, no R^2
    assert np.isnan(subgiant.r2) and np.isnan(subgiant.r2_max) and subgiant.within_2 == 1.0
    everyone = summary.loc[("all", "all")]
    assert (everyone.median_abs_z, everyone.within_1, everyone.within_2) == (2.0, 0.2, 0.6)
    with pytest.raises(ValueError, match=r"1 stars lie outside the magnitude edges \[20.65, 22.5\]"):
        F.ceiling_summary(F.star_ceiling(*made_up), [20.65, 22.5])


def test_star_ceiling_refuses_predictions_of_other_spectra_or_labels(made_up):
    predictions, crlb = made_up
    with pytest.raises(ValueError, match=r"the predictions table holds 4 rows .* bounds has 5 spectra"):
        F.star_ceiling(predictions.iloc[:4], crlb)
    with pytest.raises(ValueError, match=r"in the labels or magnitude of 4 of 5 rows \(first row 0\)"):
        F.star_ceiling(predictions.iloc[::-1].reset_index(drop=True), crlb)
    with pytest.raises(ValueError, match="the predictions are not of log g"):
        F.star_ceiling(predictions.assign(true=predictions.T_eff), crlb)
    with pytest.raises(ValueError, match="k, 0, must be positive"):
        F.star_ceiling(predictions, crlb, k=0)
