"""Tau decided: the share of days on which an agent's signal decided its position, measured on
its own Q-values (with the day's tau, and with tau = 0)."""

from __future__ import annotations

import math

import numpy as np

from rewts.backtest.agents import tau_decided

LONG_SHORT = np.array([-1.0, 1.0])
LONG = [0.0, 1.0]
SHORT = [1.0, 0.0]


def test_days_whose_position_tau_changed_are_counted_and_no_others():
    with_tau = np.array([LONG, SHORT, LONG, SHORT])
    assert tau_decided(with_tau, with_tau, LONG_SHORT) == 0.0  # tau never matters
    assert tau_decided(with_tau, np.array([SHORT, LONG, SHORT, LONG]), LONG_SHORT) == 1.0
    assert tau_decided(with_tau, np.array([LONG, LONG, LONG, LONG]), LONG_SHORT) == 0.5


def test_three_positions_and_no_days():
    three = np.array([-1.0, 0.0, 1.0])
    flat, long = [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]
    assert tau_decided(np.array([long, flat]), np.array([flat, flat]), three) == 0.5
    assert math.isnan(tau_decided(np.zeros((0, 2)), np.zeros((0, 2)), LONG_SHORT))
