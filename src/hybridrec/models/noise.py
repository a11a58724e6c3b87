"""Training noise keyed by what it falls on: whether a film's hidden unit, a user's ID or a rating of a
history is dropped at a step is a hash of (seed, member, stream, step, key), not a draw from the
process's random stream.

So every process of data-parallel training draws, for its share of the users and for the films they
all encode, exactly the masks one process would (Lightning's DDP then computes the single-process
gradients, with dropout on); a run resumed from a checkpoint draws the masks of the run it resumes; and
a mask costs a few integer operations per element (a third of ``torch.rand``'s time on a CPU).
The hash is lowbias32 (C. Wellons, "Prospecting for hash functions") in wrapping int32 arithmetic,
which CPUs and GPUs compute alike. Memory: one int32 per masked element, for the step.
"""

from __future__ import annotations

import zlib

import torch

_GOLDEN = -0x61C88647  # 0x9E3779B9 as a signed int32: spreads consecutive keys over the 32 bits
_M1, _M2 = 0x7FEB352D, -0x7B935975  # lowbias32's multipliers (0x846CA68B as a signed int32)
_BITS = 1 << 32


def _mix(x: torch.Tensor) -> torch.Tensor:
    """lowbias32 of int32 ``x``, in place (right shifts masked: torch's are arithmetic)."""
    x ^= (x >> 16) & 0xFFFF
    x *= _M1
    x ^= (x >> 15) & 0x1FFFF
    x *= _M2
    x ^= (x >> 16) & 0xFFFF
    return x


def _mix_int(value: int) -> int:
    """``_mix`` of one Python integer (an int32's bits; a larger one is folded to 32 bits first), as a
    signed int32."""
    if not -(_BITS // 2) <= value < _BITS:
        value %= 1 << 64
        value ^= value >> 32
    x = value % _BITS
    x ^= x >> 16
    x = x * _M1 % _BITS
    x ^= x >> 15
    x = x * _M2 % _BITS
    x ^= x >> 16
    return x - _BITS if x >= _BITS // 2 else x


class KeyedNoise:
    """Bernoulli masks keyed by (``seed``, ``member``, stream, ``step``, key); ``step`` is set by the
    training loop (the optimiser step the masks are for)."""

    def __init__(self, seed: int, member: int):
        self.seed = _mix_int(_mix_int(seed) ^ member)
        self.step = 0

    def salt(self, stream: str) -> int:
        """The signed 32-bit salt of ``stream`` at this step (also a generator seed, for draws
        that are not masks)."""
        return _mix_int(_mix_int(self.seed ^ zlib.crc32(stream.encode())) ^ self.step)

    def below(self, stream: str, keys: torch.Tensor, rate: float) -> torch.Tensor:
        """For each key (int64, >= 0, any shape): True with probability ``rate``; the same answer for
        the same stream, step and key in every process."""
        if rate >= 1:
            return torch.ones_like(keys, dtype=torch.bool)
        return self._hash(stream, keys) < int(-(_BITS // 2) + round(rate * _BITS))

    def uniform(self, stream: str, keys: torch.Tensor) -> torch.Tensor:
        """For each key: a number in [0, 1) (float64), the same for the same stream, step and key."""
        return (self._hash(stream, keys).double() + _BITS // 2) / _BITS

    def _hash(self, stream: str, keys: torch.Tensor) -> torch.Tensor:
        """Each key's int32 hash at this step, uniform over the 32 bits."""
        folded = (keys ^ (keys >> 32)).to(torch.int32)  # (keys under 2**31 are themselves)
        return _mix(folded * _GOLDEN ^ self.salt(stream))
