"""The ranking head's loss: a softmax over a user's films, read at the films they liked, in few passes.

Written out, ``-log_softmax(logits.masked_fill(hidden, -inf))[rows, cols].mean()`` keeps a log-probability
matrix, a mask's gradient and a scattered one-hot matrix, each users x films; here the forward keeps one
masked copy of the logits and the log-normalisers, and the backward turns that copy into the gradient
in place (softmax x liked count per row, minus one at each liked film). Same numbers, to float
rounding. Memory: one users x films float32 matrix for the step.
"""

from __future__ import annotations

import torch


def liked_films_loss(
    logits: torch.Tensor, hidden: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor
) -> torch.Tensor:
    """Mean over the (row, col) pairs of -log softmax(row's logits, ``hidden`` films left out)[col].
    Every row must keep at least one film (its liked ones are never hidden)."""
    return _LikedFilmsLoss.apply(logits.float(), hidden, rows, cols)


class _LikedFilmsLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, hidden, rows, cols):
        masked = logits.masked_fill(hidden, float("-inf"))
        normaliser = torch.logsumexp(masked, dim=1)
        loss = (normaliser[rows] - masked[rows, cols]).mean()
        ctx.save_for_backward(masked, normaliser, rows, cols)
        return loss

    @staticmethod
    def backward(ctx, grad):
        masked, normaliser, rows, cols = ctx.saved_tensors
        # d loss / d logit[r, f] = (liked count of r x softmax[r, f] - [f liked by r]) / pairs
        gradient = masked.sub_(normaliser.unsqueeze(1)).exp_()  # (the saved copy: used once)
        counts = torch.bincount(rows, minlength=len(gradient)).to(gradient.dtype)
        gradient.mul_(counts.unsqueeze(1))
        gradient.index_put_((rows, cols), torch.full_like(cols, -1.0, dtype=gradient.dtype), accumulate=True)
        return gradient.mul_(grad / len(rows)), None, None, None
