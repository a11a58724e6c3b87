"""Keyed training noise: masks that are a function of (seed, member, stream, step, key), so any process
drawing them for any subset of the keys gets the single process's masks."""

from __future__ import annotations

import torch

from hybridrec.models.noise import KeyedNoise, _mix, _mix_int


def test_the_tensor_hash_is_the_integer_hash():
    values = [0, 1, -5, 2**31 - 1, -(2**31), 123_456_789]
    hashed = _mix(torch.tensor(values, dtype=torch.int32)).tolist()
    assert hashed == [_mix_int(v) for v in values]


def test_a_mask_has_its_rate_and_depends_on_stream_step_and_member_alone():
    keys = torch.arange(200_000)
    noise = KeyedNoise(seed=42, member=0)
    for rate in (0.05, 0.3, 0.9):
        assert abs(noise.below("tower", keys, rate).float().mean().item() - rate) < 0.005
    mask = noise.below("tower", keys, 0.3)
    assert torch.equal(KeyedNoise(seed=42, member=0).below("tower", keys, 0.3), mask)
    others = [KeyedNoise(seed=42, member=1), KeyedNoise(seed=43, member=0)]
    noise.step = 1
    others.append(noise)
    for other in others:  # independent: agreement as two independent draws (0.7² + 0.3² = 0.58)
        agreement = (other.below("tower", keys, 0.3) == mask).float().mean().item()
        assert abs(agreement - 0.58) < 0.01
    noise.step = 0
    assert not torch.equal(noise.below("history", keys, 0.3), mask)


def test_any_share_of_the_keys_gets_the_masks_of_the_whole():
    """What makes data-parallel training draw one process's masks: a process asks for its rows alone."""
    noise = KeyedNoise(seed=7, member=2)
    noise.step = 11
    keys = torch.arange(10_000)
    whole = noise.below("user-id", keys, 0.2)
    share = torch.randperm(10_000)[:3_000]
    assert torch.equal(noise.below("user-id", keys[share], 0.2), whole[share])
    assert noise.below("x", keys, 0.0).sum() == 0 and noise.below("x", keys, 1.0).all()


def test_uniform_draws_are_keyed_and_cover_the_unit_interval():
    noise = KeyedNoise(seed=3, member=0)
    keys = torch.arange(100_000)
    draws = noise.uniform("history-sample", keys)
    assert draws.min() >= 0 and draws.max() < 1 and abs(draws.mean().item() - 0.5) < 0.01
    assert torch.equal(KeyedNoise(seed=3, member=0).uniform("history-sample", keys[5:9]), draws[5:9])
