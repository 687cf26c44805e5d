import numpy as np
import pytest

from specvit_core import fisher as F

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

from specvit_core.spectra.embedded import embedded_grid  # noqa: E402


@pytest.fixture(scope="module")
def small_grid():
    """A small embedded grid with uniform steps on every axis (1.5 x the paper's T_eff step of the ceiling grid),
    synthesized once and cached in data/cache."""
    axes = {"T_eff": np.arange(4000.0, 5001.0, 250.0), "log_g": np.arange(1.5, 4.01, 0.5),
            "M_H": np.arange(-1.0, 0.51, 0.25)}
    return embedded_grid(axes=axes, progress=False)


def test_finite_difference_and_exact_jacobians_obey_the_spline_identity(small_grid):
    # For a C2 cubic spline on uniform nodes, (s'_{i-1} + 4 s'_i + s'_{i+1}) / 6 = (y_{i+1} - y_{i-1}) / (2h) at
    # every interior node: the central difference of eq. J.1 is a smoothed copy of the exact derivative, and the
    # two differ by exactly -(s'_{i-1} - 2 s'_i + s'_{i+1}) / 6, i.e. only where the derivative itself curves.
    axes = small_grid.axes
    _, _, fd = F.normalized_jacobian(small_grid, axes, "finite_difference")
    _, _, exact = F.normalized_jacobian(small_grid, axes, "exact")
    shape = tuple(len(axes[a]) for a in F.AXES) + fd.shape[1:]
    fd, exact = fd.reshape(shape), exact.reshape(shape)
    for k in range(3):
        s = np.moveaxis(exact[..., k], k, 0)
        d = np.moveaxis(fd[..., k], k, 0)
        smoothed = (s[:-2] + 4 * s[1:-1] + s[2:]) / 6
        np.testing.assert_allclose(smoothed, d[1:-1], rtol=0, atol=1e-9 * np.abs(d).max())


def test_finite_difference_and_exact_ceilings_agree_where_the_grid_is_smooth(small_grid):
    # Smooth: the exact Jacobian's relative second difference kappa along every axis is <= 0.5 (noise-weighted).
    # By the identity above, the column mismatch eps = |J_fd - J_exact| / |J_exact| is then kappa / 6 <= 0.08.
    # To first order the log g residual after marginalization, of norm sqrt(rho) |J_g|, moves by <= eps |J_g|, so
    # the marginal information (a squared norm) and the CRLB move by <= 2 eps / sqrt(rho): that is the tolerance.
    axes = small_grid.axes
    _, _, fd = F.normalized_jacobian(small_grid, axes, "finite_difference")
    _, _, exact = F.normalized_jacobian(small_grid, axes, "exact")
    sigma, _ = F.normalized_sigma(small_grid, axes, 21.5)
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


def test_ceiling_falls_with_magnitude_and_matches_the_pointwise_bound(small_grid):
    axes = F.ceiling_axes(small_grid, ranges={"T_eff": (4250, 4750), "log_g": (2, 3), "M_H": (-0.5, 0)})
    points = F.ceiling_points(small_grid, mags=(20.0, 22.0), axes=axes, method="exact", label_variance=4 / 3)
    bright, faint = (points[points.mag == m].reset_index(drop=True) for m in (20.0, 22.0))
    assert np.all(faint.crlb > bright.crlb) and np.all(faint.r2_max <= bright.r2_max)
    assert np.all(faint.snr < bright.snr)
    cond = {k: np.full(len(faint), v) for k, v in F.MEDIAN_CONDITIONS.items()}
    direct = F.pointwise_crlb(small_grid, faint[list(F.AXES)].to_numpy(), faint.mag.to_numpy(), cond)
    np.testing.assert_allclose(direct, faint.crlb, rtol=1e-6)
    table = F.ceiling_table(points)
    assert list(table.mag) == [20.0, 22.0] and np.all(table.r2_max_p10 <= table.r2_max_p90)


def test_ceiling_helpers_reject_bad_input(small_grid):
    with pytest.raises(ValueError, match="stride, 0, must be a positive integer"):
        F.ceiling_axes(small_grid, stride=0)
    with pytest.raises(ValueError, match=r"the log_g range \(4.5, 5\) holds no node"):
        F.ceiling_axes(small_grid, ranges={"log_g": (4.5, 5.0), "T_eff": (4000, 5000), "M_H": (-1, 0)})
    with pytest.raises(ValueError, match="method, 'spline', must be one of"):
        F.normalized_jacobian(small_grid, small_grid.axes, "spline")
    with pytest.raises(ValueError, match="are not all nodes of the grid"):
        F.normalized_jacobian(small_grid, {**small_grid.axes, "log_g": np.array([2.25])})
    points = F.ceiling_points(small_grid, mags=(21.0,), axes=F.ceiling_axes(small_grid, stride=4))
    with pytest.raises(ValueError, match=r"mag, 22.0, is not one of the magnitudes of points: \[21.0\]"):
        F.ceiling_map(points, 22.0)
