"""Textbook dense Kalman filter in NumPy float64, the independent reference for the tests.

Shares no code with the project packages on purpose: every filter in the project is checked
against these few lines (and these lines against brute-force Gaussian conditioning).
"""

from __future__ import annotations

import numpy as np


def kf_update(mean, cov, obs, obs_model, obs_noise):
    """Dense update: K = P H^T (H P H^T + R)^-1; x+ = x + K (y - H x); P+ = P - K H P."""
    innovation_cov = obs_model @ cov @ obs_model.T + obs_noise
    gain = np.linalg.solve(innovation_cov.T, (cov @ obs_model.T).T).T
    new_mean = mean + gain @ (obs - obs_model @ mean)
    new_cov = cov - gain @ obs_model @ cov
    return new_mean, 0.5 * (new_cov + new_cov.T)


def kf_predict(mean, cov, transition, transition_noise):
    """Dense prediction: x- = A x; P- = A P A^T + Q."""
    return transition @ mean, transition @ cov @ transition.T + transition_noise


def kf_filter(init_mean, init_cov, transitions, transition_noise, obs, obs_model, obs_noises):
    """Predict-then-update filter over T steps; returns lists of priors and posteriors."""
    mean, cov = init_mean, init_cov
    priors, posteriors = [], []
    for t in range(len(obs)):
        mean, cov = kf_predict(mean, cov, transitions[t], transition_noise)
        priors.append((mean, cov))
        mean, cov = kf_update(mean, cov, obs[t], obs_model, obs_noises[t])
        posteriors.append((mean, cov))
    return priors, posteriors


def rts_smoother(posteriors, transitions, transition_noise):
    """Rauch-Tung-Striebel smoother over filtered (mean, cov) with x_t = A_t x_{t-1} + noise.

    transitions[t] maps step t-1 to step t, so the backward step from t+1 uses transitions[t+1].
    """
    smoothed = [posteriors[-1]]
    for t in range(len(posteriors) - 2, -1, -1):
        mean, cov = posteriors[t]
        a = transitions[t + 1]
        pred_mean, pred_cov = a @ mean, a @ cov @ a.T + transition_noise
        gain = np.linalg.solve(pred_cov.T, (cov @ a.T).T).T
        next_mean, next_cov = smoothed[0]
        smoothed.insert(0, (mean + gain @ (next_mean - pred_mean), cov + gain @ (next_cov - pred_cov) @ gain.T))
    return smoothed


def condition_gaussian(mean, cov, observed_idx, values):
    """Brute-force conditioning of a joint Gaussian on the entries observed_idx = values."""
    hidden_idx = np.setdiff1d(np.arange(len(mean)), observed_idx)
    cov_ho = cov[np.ix_(hidden_idx, observed_idx)]
    cov_oo = cov[np.ix_(observed_idx, observed_idx)]
    weights = np.linalg.solve(cov_oo, cov_ho.T).T
    cond_mean = mean[hidden_idx] + weights @ (values - mean[observed_idx])
    cond_cov = cov[np.ix_(hidden_idx, hidden_idx)] - weights @ cov_ho.T
    return hidden_idx, cond_mean, cond_cov
