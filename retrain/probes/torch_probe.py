"""The reference article's probe: LayerNorm + Dropout + Linear, trained with early stopping.

``logit = Linear(Dropout(LayerNorm(h)))`` (LayerNorm: Ba et al. 2016, Eq. 4;
dropout: Srivastava et al. 2014), trained with AdamW on binary cross-entropy;
training stops when the loss on a stratified validation split has not improved
for ``patience`` epochs, and the best weights are restored (Prechelt 1998).

At inference dropout is the identity and LayerNorm's gain ``g`` and bias
``beta`` fold into the linear layer: ``w' = w * g``, ``b' = b + w . beta``, so the
probe exports to a :class:`collectors.probe.linear.LinearProbe` with ``input_norm=eps``.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch import nn

from retrain.probes.estimators import Probe, check_xy


class NormLinearProbe(Probe):
    """LayerNorm + Dropout + Linear probe with early stopping.

    Parameters
    ----------
    dropout : float
        Dropout probability in [0, 1).
    lr, weight_decay : float
        AdamW settings.
    batch_size : int
    max_epochs : int
    patience : int
        Epochs without a better validation loss before stopping.
    validation_fraction : float
        Share of the fitting rows held out for early stopping.
    seed : int

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        Folded weights ``w * g`` on the LayerNorm-normalised state.
    intercept_ : float
    input_norm_ : float
        LayerNorm epsilon.
    epochs_ : int
        Epochs run; ``best_epoch_`` the one whose weights were kept.
    """

    kind = "layernorm_linear"

    def __init__(
        self,
        dropout: float = 0.1,
        lr: float = 5e-3,
        weight_decay: float = 1e-2,
        batch_size: int = 256,
        max_epochs: int = 100,
        patience: int = 5,
        validation_fraction: float = 0.15,
        seed: int = 0,
    ) -> None:
        self.dropout, self.lr, self.weight_decay = dropout, lr, weight_decay
        self.batch_size, self.max_epochs, self.patience = batch_size, max_epochs, patience
        self.validation_fraction, self.seed = validation_fraction, seed

    def fit(self, states: np.ndarray, correct: np.ndarray) -> NormLinearProbe:
        """Fit on ``states`` ``(n_samples, n_features)`` and 0/1 ``correct``; return self."""
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        x, y = check_xy(states, correct)
        x_fit, x_val, y_fit, y_val = train_test_split(
            x, y, test_size=self.validation_fraction, stratify=y, random_state=self.seed
        )
        torch.manual_seed(self.seed)
        net = nn.Sequential(
            nn.LayerNorm(x.shape[1]), nn.Dropout(self.dropout), nn.Linear(x.shape[1], 1)
        )
        opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        loss_fn = nn.BCEWithLogitsLoss()
        xf, yf = torch.from_numpy(x_fit), torch.from_numpy(y_fit.astype(np.float32))
        xv, yv = torch.from_numpy(x_val), torch.from_numpy(y_val.astype(np.float32))
        gen = torch.Generator().manual_seed(self.seed)
        best, best_state, since = float("inf"), copy.deepcopy(net.state_dict()), 0
        self.best_epoch_ = self.epochs_ = 0
        for epoch in range(1, self.max_epochs + 1):
            net.train()
            for idx in torch.randperm(len(yf), generator=gen).split(self.batch_size):
                opt.zero_grad()
                loss_fn(net(xf[idx]).squeeze(-1), yf[idx]).backward()
                opt.step()
            net.eval()
            with torch.no_grad():
                val = float(loss_fn(net(xv).squeeze(-1), yv))
            self.epochs_ = epoch
            if val < best - 1e-5:
                best, best_state, since, self.best_epoch_ = (
                    val,
                    copy.deepcopy(net.state_dict()),
                    0,
                    epoch,
                )
            else:
                since += 1
                if since >= self.patience:
                    break
        net.load_state_dict(best_state)
        norm, linear = net[0], net[2]
        w = linear.weight.detach()[0].double()
        self.coef_ = (w * norm.weight.detach().double()).numpy().astype(np.float32)
        self.intercept_ = float(linear.bias.detach().double()[0] + w @ norm.bias.detach().double())
        self.input_norm_ = float(norm.eps)
        self.validation_loss_ = best
        return self
