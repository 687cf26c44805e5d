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
