"""The ranking head's loss in few passes is the written-out masked log-softmax, value and gradient."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hybridrec.models.softmax import liked_films_loss


def test_liked_films_loss_is_the_masked_log_softmax_read_at_the_liked_films():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(7, 30, generator=generator, dtype=torch.float64)
    hidden = torch.rand(7, 30, generator=generator) < 0.4
    rows = torch.tensor([0, 0, 1, 2, 3, 3, 3, 4, 5, 6, 6])  # several liked films per row, one twice
    cols = torch.tensor([1, 5, 2, 9, 0, 4, 4, 29, 13, 7, 8])
    hidden[rows, cols] = False
    ours = logits.clone().requires_grad_()
    written = logits.clone().requires_grad_()
    loss = liked_films_loss(ours, hidden, rows, cols)
    expected = -F.log_softmax(written.masked_fill(hidden, float("-inf")), dim=1)[rows, cols].mean()
    (3.0 * loss).backward()
    (3.0 * expected).backward()
    torch.testing.assert_close(loss.double(), expected)
    torch.testing.assert_close(ours.grad, written.grad.float().double(), rtol=1e-5, atol=1e-6)
    assert (ours.grad[hidden] == 0).all()
