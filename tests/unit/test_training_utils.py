"""Shared training utilities: schedule shape, checkpoint fingerprints, non-finite loss guard."""

import math

import pytest
import torch

from larp.training import Checkpointer, check_finite, lr_multiplier
from larp.errors import NonFiniteLoss


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


# --- issue 14: checkpoints are never unpickled, unreadable ones are named, NaN keeps one from before the step -----

class _Planted:
    """Unpickling this runs ``touch <marker>`` (what a checkpoint planted in a shared work/ could do)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_a_planted_pickle_checkpoint_is_refused_without_running_anything(tmp_path):
    from larp.errors import StageError

    marker = tmp_path / "pwned"
    ck = Checkpointer(tmp_path / "work", {"lr": 1.0})
    ck.dir.mkdir()
    torch.save({"step": 3, "fingerprint": ck.fp, "payload": _Planted(marker)}, ck.path)
    with pytest.raises(StageError, match=r"checkpoint\.pt is not a readable training checkpoint.*rm "):
        ck.load()
    assert not marker.exists(), "loading a checkpoint ran code from it"


@pytest.mark.parametrize("content", [b"", b"garbage" * 10, "truncated"])
def test_an_unreadable_checkpoint_names_the_file_and_what_to_delete(tmp_path, content):
    from larp.errors import StageError

    ck = Checkpointer(tmp_path, {"lr": 1.0})
    ck.save(2, {"model": {"w": torch.ones(100)}})
    if content == "truncated":
        content = ck.path.read_bytes()[:-200]
    ck.path.write_bytes(content)
    with pytest.raises(StageError, match=rf"{ck.path}.*delete it.*rm {ck.path}"):
        ck.resume({"model": torch.nn.Linear(1, 1)}, "test")


def test_running_means_resume_mid_window(tmp_path):
    from larp.training import RunningMeans

    a, b = RunningMeans(), RunningMeans()
    a.add({"x": 1.0})
    b.load_state_dict(a.state_dict())
    a.add({"x": 3.0}), b.add({"x": 3.0})
    assert a.mean() == b.mean() == {"x": 2.0} and b.last == {"x": 2.0}


def test_nan_right_after_a_checkpoint_falls_back_to_the_one_before(tmp_path):
    """With checkpoint_every: 1 the newest checkpoint holds the weights the failing step used: keep the previous."""
    ck = Checkpointer(tmp_path, {"lr": 1.0})
    for step in (1, 2, 3):
        ck.save(step, {"model": {"w": torch.full((2,), float(step))}})
    assert (tmp_path / "checkpoint.prev.pt").is_file()
    with pytest.raises(NonFiniteLoss, match=r"step 3.*of step 2 \(before the non-finite step\) is kept.*"
                                            r"LARP_RESUME_CHANGED_LR=1"):
        check_finite({"l1": torch.tensor(float("nan"))}, 3, ck.path)
    assert ck.load()["step"] == 2
    # a checkpoint older than the failing step is kept as it is
    with pytest.raises(NonFiniteLoss, match=r"of step 2 \(before"):
        check_finite({"l1": torch.tensor(float("inf"))}, 5, ck.path)
    assert ck.load()["step"] == 2


def test_a_changed_lr_resumes_only_when_asked(tmp_path, monkeypatch):
    cfg = {"tokenizer": {"lr": 1.0e-4, "steps": 10}, "seed": 0}
    Checkpointer(tmp_path, cfg).save(4, {"model": {"w": torch.ones(2)}})
    lower = {"tokenizer": {"lr": 5.0e-5, "steps": 10}, "seed": 0}
    assert Checkpointer(tmp_path, lower).load() is None
    monkeypatch.setenv("LARP_RESUME_CHANGED_LR", "1")
    assert Checkpointer(tmp_path, lower).load()["step"] == 4
    other = {"tokenizer": {"lr": 5.0e-5, "steps": 12}, "seed": 0}
    assert Checkpointer(tmp_path, other).load() is None, "only the lr may differ"


def test_a_kill_between_the_two_renames_of_save_resumes_from_the_previous(tmp_path):
    ck = Checkpointer(tmp_path, {"lr": 1.0})
    ck.save(1, {"model": {"w": torch.ones(2)}})
    ck.save(2, {"model": {"w": torch.ones(2)}})
    ck.path.unlink()  # as if killed after checkpoint.pt -> checkpoint.prev.pt
    assert ck.load()["step"] == 1
