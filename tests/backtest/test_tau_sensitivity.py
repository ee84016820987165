"""Tau sensitivity: how much an agent acts on its signal, measured on its own Q-values."""

from __future__ import annotations

import math

import numpy as np

from rewts.backtest.agents import tau_sensitivity

LONG_SHORT = np.array([-1.0, 1.0])


def test_an_agent_that_follows_tau_every_day_scores_one_and_one_that_ignores_it_zero():
    long_q = np.array([[0.0, 1.0]] * 4)  # long whatever tau says
    short_q = np.array([[1.0, 0.0]] * 4)
    assert tau_sensitivity(long_q, short_q, LONG_SHORT) == 1.0
    assert tau_sensitivity(long_q, long_q, LONG_SHORT) == 0.0
    # contrarian: short on +tau, long on -tau is not "acting on the signal"
    assert tau_sensitivity(short_q, long_q, LONG_SHORT) == 0.0


def test_the_share_counts_days_and_works_for_three_positions():
    plus = np.array([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    minus = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    assert tau_sensitivity(plus, minus, LONG_SHORT) == 0.5
    three = np.array([-1.0, 0.0, 1.0])
    flat_to_long = (np.array([[0.0, 0.0, 1.0]]), np.array([[0.0, 1.0, 0.0]]))
    assert tau_sensitivity(*flat_to_long, three) == 1.0
    assert math.isnan(tau_sensitivity(np.zeros((0, 2)), np.zeros((0, 2)), LONG_SHORT))
