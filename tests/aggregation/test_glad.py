"""GLAD's vectorised objective, gradient and E-step against the plain formulas."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.special import expit

from aggregation import GLAD, simulate_crowd
from aggregation.glad import _GladTerms
from aggregation.matrix import encode


@pytest.fixture(scope="module")
def model() -> _GladTerms:
    crowd = simulate_crowd(200, 15, n_labels=3, overlap=4, spammers=0.2, adversaries=0.1, seed=3)
    return _GladTerms(encode(crowd.answers), 1.0, 1.0)


def reference(model: _GladTerms, alpha, beta, p_given):
    """Objective and gradient written out with logaddexp / expit, as crowd-kit states them."""
    scale = np.exp(beta)[model.task]
    x = alpha[model.worker] * scale
    right = -np.logaddexp(0.0, -x)
    wrong = -np.logaddexp(0.0, x) - np.log(model.n_labels - 1)
    prior = -0.5 * (np.sum((alpha - 1) ** 2) + np.sum((beta - 1) ** 2))
    prior -= (len(alpha) + len(beta)) * 0.5 * np.log(2 * np.pi)
    q = np.sum(p_given * right + (1 - p_given) * wrong) + prior
    slope = p_given - expit(x)
    grad_a = np.bincount(model.worker, slope * scale, model.n_workers) - (alpha - 1)
    grad_b = np.bincount(model.task, slope * x, model.n_tasks) - (beta - 1)
    log_lik = np.zeros((model.n_tasks, model.n_labels))
    for k in range(model.n_labels):
        terms = np.where(model.label == k, right, wrong)
        log_lik[:, k] = np.bincount(model.task, terms, model.n_tasks)
    post = np.exp(log_lik - log_lik.max(axis=1, keepdims=True))
    return q, grad_a, grad_b, post / post.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("spread", [0.5, 3.0, 400.0])  # 400: |x| far past exp's range
def test_objective_gradient_and_posterior_match_plain_formulas(model, spread):
    rng = np.random.default_rng(0)
    alpha = rng.normal(0.5, spread, model.n_workers)
    beta = rng.normal(0.0, 1.0, model.n_tasks)
    p_given = rng.uniform(0, 1, len(model.task))
    q_ref, ga_ref, gb_ref, post_ref = reference(model, alpha, beta, p_given)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        q, grad_a, grad_b = model.objective_and_gradient(alpha, beta, p_given)
        post = model.posterior(alpha, beta)
    assert q == pytest.approx(q_ref, rel=1e-12)
    np.testing.assert_allclose(grad_a, ga_ref, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(grad_b, gb_ref, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(post, post_ref, atol=1e-12)


def test_gradient_matches_finite_differences(model):
    rng = np.random.default_rng(1)
    alpha, beta = rng.normal(1, 1, model.n_workers), rng.normal(0, 0.5, model.n_tasks)
    p_given = rng.uniform(0, 1, len(model.task))
    _, grad_a, grad_b = model.objective_and_gradient(alpha, beta, p_given)
    h = 1e-6
    for w in (0, 3, 7):
        up, down = alpha.copy(), alpha.copy()
        up[w] += h
        down[w] -= h
        fd = (
            model.objective_and_gradient(up, beta, p_given)[0]
            - model.objective_and_gradient(down, beta, p_given)[0]
        ) / (2 * h)
        assert grad_a[w] == pytest.approx(fd, rel=1e-5, abs=1e-6)
    for t in (0, 50, 199):
        up, down = beta.copy(), beta.copy()
        up[t] += h
        down[t] -= h
        fd = (
            model.objective_and_gradient(alpha, up, p_given)[0]
            - model.objective_and_gradient(alpha, down, p_given)[0]
        ) / (2 * h)
        assert grad_b[t] == pytest.approx(fd, rel=1e-5, abs=1e-6)


def test_loss_history_is_the_objective_at_the_fitted_parameters():
    crowd = simulate_crowd(300, 20, n_labels=3, overlap=4, spammers=0.3, seed=11)
    glad = GLAD().fit(crowd.answers)
    matrix = glad.matrix_
    model = _GladTerms(matrix, 1.0, 1.0)
    q = model.objective(glad.alpha_, glad.beta_, glad.posterior_)
    assert glad.loss_history_[-1] == pytest.approx(q / (matrix.n_answers * matrix.n_labels))


def test_the_numpy_m_step_climbs_as_far_as_scipys_conjugate_gradient():
    crowd = simulate_crowd(400, 20, n_labels=3, overlap=4, spammers=0.2, adversaries=0.1, seed=5)
    matrix = encode(crowd.answers)
    terms = _GladTerms(matrix, 1.0, 1.0)
    alpha, beta = np.ones(matrix.n_workers), np.ones(matrix.n_tasks)
    proba = terms.posterior(alpha, beta)
    start = terms.objective(alpha, beta, proba)
    reached = {}
    for optimizer in ("cg", "gradient"):
        glad = GLAD(m_step_max_iter=25, optimizer=optimizer)
        a, b, q = glad._m_step(terms, alpha.copy(), beta.copy(), proba)
        assert q == pytest.approx(terms.objective(a, b, proba))
        reached[optimizer] = q
    assert reached["gradient"] > start
    gain = reached["cg"] - start
    assert reached["gradient"] >= reached["cg"] - 0.02 * gain
    labels = {o: GLAD(optimizer=o).fit(crowd.answers).labels_ for o in ("cg", "gradient")}
    assert (labels["cg"] == labels["gradient"]).mean() >= 0.98
    with pytest.raises(ValueError, match="optimizer"):
        GLAD(optimizer="adam")
