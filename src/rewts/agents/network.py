"""The Q-network: an MLP from observation to one Q-value per action.

``mlp``: Linear + ReLU layers (the default), with optional dropout after each. ``tdqn``: Théate & Ernst's layers, each Linear +
BatchNorm + LeakyReLU + Dropout(0.2); it behaves differently in training and evaluation, so the
agent acts in eval mode and learns in train mode (as their code does).

``tau_index``: the observation column of the LLM's signal tau. The network then also adds
``tau * tau_weight[a]`` to each action's Q-value: a linear path for the guidance (the MLP still
sees tau too). Weight decay, which keeps the MLP from memorizing the market features, acts on
this weight like on every other, but one weight pays far less for an effect than a path through
two decayed hidden layers; without the head the decay that stops memorization also erases an
informative tau (docs/rl.md, "Defaults that learn").
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

NETWORKS = ("mlp", "tdqn")
TDQN_DROPOUT = 0.2


class QNetwork(nn.Module):
    def __init__(
        self,
        obs_dim: int,
        n_actions: int,
        hidden_dims: Sequence[int],
        kind: str = "mlp",
        dropout: float = 0.0,
        tau_index: int | None = None,
    ) -> None:
        super().__init__()
        if kind not in NETWORKS:
            raise ValueError(f"unknown network {kind!r} (choose from {', '.join(NETWORKS)})")
        self.kind = kind
        self.dropout = float(dropout) if kind == "mlp" else TDQN_DROPOUT
        layers: list[nn.Module] = []
        width = obs_dim
        for hidden in hidden_dims:
            layers.append(nn.Linear(width, hidden))
            if kind == "tdqn":
                layers += [nn.BatchNorm1d(hidden), nn.LeakyReLU(), nn.Dropout(TDQN_DROPOUT)]
            else:
                layers.append(nn.ReLU())
                if self.dropout > 0:
                    layers.append(nn.Dropout(self.dropout))
            width = hidden
        layers.append(nn.Linear(width, n_actions))
        self.net = nn.Sequential(*layers)
        self.tau_index = tau_index
        if tau_index is not None:
            if not 0 <= tau_index < obs_dim:
                raise ValueError(f"tau_index {tau_index} is outside the {obs_dim} inputs")
            # zeros, not a random init: no draw from torch's generator, so the MLP's weights
            # are the same with or without the head
            self.tau_weight = nn.Parameter(torch.zeros(n_actions))

    @property
    def has_modes(self) -> bool:
        """True when train and eval modes compute different things (batch norm, dropout)."""
        return self.kind == "tdqn" or self.dropout > 0

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        q = self.net(obs)
        if self.tau_index is None:
            return q
        return q + obs[..., self.tau_index : self.tau_index + 1] * self.tau_weight
