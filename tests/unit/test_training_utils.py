"""Shared training utilities: schedule shape, checkpoint fingerprints, non-finite loss guard."""

import math

import pytest
import torch

from larp.training import Checkpointer, NonFiniteLoss, check_finite, lr_multiplier


def test_warmup_cosine_schedule():
    total, warm, lo = 100, 10, 0.01
    assert lr_multiplier(0, total, warm, lo) == pytest.approx(lo)
    assert lr_multiplier(5, total, warm, lo) == pytest.approx(lo + (1 - lo) * 0.5)
    assert lr_multiplier(10, total, warm, lo) == pytest.approx(1.0)
    assert lr_multiplier(55, total, warm, lo) == pytest.approx(lo + (1 - lo) * 0.5)
    assert lr_multiplier(100, total, warm, lo) == pytest.approx(lo)
    vals = [lr_multiplier(s, total, warm, lo) for s in range(warm, total + 1)]
    assert all(a >= b for a, b in zip(vals, vals[1:]))
    assert not math.isnan(lr_multiplier(0, 1, 0, lo))


def test_checkpointer_roundtrip_and_refuses_other_config(tmp_path):
    ck = Checkpointer(tmp_path, {"lr": 1.0})
    assert ck.load() is None
    torch.manual_seed(3)
    ck.save(7, {"model": {"w": torch.ones(2)}})
    expected = torch.rand(3)
    loaded = ck.load()
    assert loaded["step"] == 7 and torch.equal(loaded["model"]["w"], torch.ones(2))
    assert torch.equal(torch.rand(3), expected), "the RNG state must be restored"
    assert Checkpointer(tmp_path, {"lr": 2.0}).load() is None


def test_end_of_step_checkpoints_when_due_once_and_stops_at_stop_after(tmp_path, monkeypatch):
    ck = Checkpointer(tmp_path, {"lr": 1.0})
    saved = []
    monkeypatch.setattr(ck, "save", lambda step, state: saved.append(step))
    model = torch.nn.Linear(1, 1)
    stops = [ck.end_of_step(d, 10, 4, {"model": model}, True, stop_after=8) for d in range(1, 9)]
    assert saved == [4, 8]  # step 8 is both due and the stop: written once
    assert stops == [False] * 7 + [True]
    saved.clear()
    assert not any(ck.end_of_step(d, 10, 4, {"model": model}) for d in range(1, 11))
    assert saved == [4, 8, 10]  # every 4 steps and the last one
    saved.clear()
    ck.end_of_step(4, 10, 4, {"model": model}, is_main=False)
    assert saved == [], "only rank 0 writes"


def test_non_finite_loss_names_step_and_checkpoint(tmp_path):
    check_finite({"l1": torch.tensor(0.5)}, 3, None)
    with pytest.raises(NonFiniteLoss, match=r"step 4.*'prior': nan.*no checkpoint"):
        check_finite({"l1": torch.tensor(0.5), "prior": torch.tensor(float("nan"))}, 4, tmp_path / "c.pt")
