"""Detectors: I3D checksum gate and call convention, atomic download, the trainable classifier stand-in."""

import shutil
import subprocess

import pytest
import torch

from larp.metrics import detectors
from larp.metrics.detectors import (
    ClassifierConfig,
    ClassifierDetector,
    Detector,
    I3DChecksumError,
    I3DDetector,
    VideoClassifier,
    classifier_accuracy,
    fetch_i3d,
    git_blob_sha1,
    train_classifier,
)

# ----------------------------------------------------------------------------------------------------
# I3D


@pytest.mark.skipif(shutil.which("git") is None, reason="needs the git executable")
@pytest.mark.parametrize("content", [b"", b"hello\n", bytes(range(256)) * 5000])
def test_git_blob_sha1_equals_git_hash_object(tmp_path, content):
    path = tmp_path / "blob.bin"
    path.write_bytes(content)
    git = subprocess.run(["git", "hash-object", str(path)], capture_output=True, text=True, check=True)
    expected = git.stdout.strip()
    assert git_blob_sha1(path) == expected


def test_git_blob_sha1_known_value(tmp_path):
    (tmp_path / "f").write_bytes(b"hello\n")
    # `echo hello | git hash-object --stdin`
    assert git_blob_sha1(tmp_path / "f") == "ce013625030ba8dba906f756967f9e9ca394464a"


def _fail_jit_load(*args, **kwargs):
    raise AssertionError("torch.jit.load must not be called on an unverified file")


def test_wrong_checksum_is_refused_before_loading(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.jit, "load", _fail_jit_load)
    path = tmp_path / "i3d_torchscript.pt"
    path.write_bytes(b"not the I3D model")
    with pytest.raises(I3DChecksumError) as err:
        I3DDetector(path)
    msg = str(err.value)
    assert str(path) in msg and detectors.I3D_GIT_BLOB_SHA1 in msg and git_blob_sha1(path) in msg
    assert "fetch_i3d" in msg


class FakeI3D:
    """Stands in for the TorchScript module: records how it is called and returns 400 logits."""

    def __init__(self):
        self.calls = []

    def eval(self):
        return self

    def __call__(self, x, **kwargs):
        self.calls.append((x.clone(), kwargs))
        return x.mean(dim=(1, 2, 3, 4))[:, None].expand(-1, 400).float()


def test_i3d_call_convention(tmp_path, monkeypatch):
    path = tmp_path / "fake.pt"
    path.write_bytes(b"fake weights")
    fake = FakeI3D()
    monkeypatch.setattr(detectors, "I3D_GIT_BLOB_SHA1", git_blob_sha1(path))
    monkeypatch.setattr(torch.jit, "load", lambda *a, **k: fake)
    det = I3DDetector(path)
    assert isinstance(det, Detector) and det.name == "i3d" and det.feature_dim == 400
    videos = torch.tensor([0.0, 1.0]).view(2, 1, 1, 1, 1).expand(2, 3, 16, 8, 8)
    feats = det.features(videos)
    assert feats.shape == (2, 400) and feats.dtype == torch.float64
    x, kwargs = fake.calls[0]
    assert kwargs == {"rescale": False, "resize": True, "return_features": True}
    assert x[0].min() == -1 and x[1].max() == 1  # [0, 1] -> [-1, 1]
    with pytest.raises(ValueError, match="at least 10 frames"):
        det.features(videos[:, :, :8])
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        det.features(videos * 255)


def test_fetch_i3d_wrong_bytes_leave_nothing(tmp_path):
    def wrong_download(url, dest):
        assert url == detectors.I3D_URL
        dest.write_bytes(b"an HTML error page")

    cache = tmp_path / "cache"
    with pytest.raises(I3DChecksumError):
        fetch_i3d(cache, downloader=wrong_download)
    assert list(cache.iterdir()) == []


def test_fetch_i3d_publishes_verified_file_once(tmp_path, monkeypatch):
    payload = b"pretend torchscript"
    (tmp_path / "ref").write_bytes(payload)
    monkeypatch.setattr(detectors, "I3D_GIT_BLOB_SHA1", git_blob_sha1(tmp_path / "ref"))
    path = fetch_i3d(tmp_path / "cache", downloader=lambda url, dest: dest.write_bytes(payload))
    assert path == tmp_path / "cache" / "i3d_torchscript.pt" and path.read_bytes() == payload
    assert list((tmp_path / "cache").iterdir()) == [path]

    def no_download(url, dest):
        raise AssertionError("a verified cached file must not be downloaded again")

    assert fetch_i3d(tmp_path / "cache", downloader=no_download) == path


# ----------------------------------------------------------------------------------------------------
# Classifier stand-in


def blobs(n: int, frames: int, res: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian blobs of random colour and position: label 1 moves right, label 0 stays still."""
    labels = torch.randint(0, 2, (n,), generator=gen)
    t = torch.arange(frames).float()
    yy, xx = torch.meshgrid(torch.arange(res).float(), torch.arange(res).float(), indexing="ij")
    cy = res * (0.25 + 0.5 * torch.rand(n, generator=gen))
    cx0 = res * (0.1 + 0.3 * torch.rand(n, generator=gen))
    cx = cx0[:, None] + labels[:, None] * (0.5 * res / frames) * t  # (n, T)
    d2 = (yy - cy[:, None, None, None]) ** 2 + (xx - cx[:, :, None, None]) ** 2  # (n, T, H, W)
    blob = torch.exp(-d2 / (2 * (res / 10) ** 2))
    colour = 0.5 + 0.5 * torch.rand(n, 3, generator=gen)
    return 0.1 + 0.8 * blob[:, None] * colour[:, :, None, None, None], labels  # (n, 3, T, H, W)


CFG = ClassifierConfig(num_classes=2, width=8, feature_dim=32, frames=8, resolution=32)


@pytest.fixture(scope="module")
def trained() -> VideoClassifier:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convs: one thread is fastest on a shared machine
    try:
        torch.manual_seed(0)
        model = VideoClassifier(CFG)
        gen = torch.Generator().manual_seed(1)
        logged = []
        result = train_classifier(model, lambda step: blobs(16, 8, 32, gen), steps=40, lr=3e-3, weight_decay=1e-4,
                                  log=lambda step, m: logged.append((step, m)))
    finally:
        torch.set_num_threads(threads)
    assert result["steps"] == 40 and len(logged) == 40 and logged[-1][1]["lr"] < logged[0][1]["lr"]
    return model


def test_classifier_learns_moving_vs_static(trained):
    gen = torch.Generator().manual_seed(2)
    assert classifier_accuracy(trained, [blobs(64, 8, 32, gen) for _ in range(2)]) > 0.9


def test_classifier_detector_features(trained):
    det = ClassifierDetector(trained, "synthetic")
    assert isinstance(det, Detector) and det.name == "clf-synthetic" and det.feature_dim == 32
    videos, _ = blobs(6, 8, 32, torch.Generator().manual_seed(3))
    feats = det.features(videos)
    assert feats.shape == (6, 32) and feats.dtype == torch.float64
    torch.testing.assert_close(det.features(videos[:2]), feats[:2], rtol=1e-5, atol=1e-5)  # eval mode: no batch stats
    assert det.features(torch.nn.functional.interpolate(videos, size=(8, 64, 64))).shape == (6, 32)  # resized
    with pytest.raises(ValueError, match="expected 8 frames"):
        det.features(videos[:, :, :4])


def test_classifier_detector_tag_is_validated(trained):
    with pytest.raises(ValueError, match="tag"):
        ClassifierDetector(trained, "Not OK")


def test_classifier_config_round_trip():
    assert ClassifierConfig.from_dict(CFG.to_dict()) == CFG
    with pytest.raises(ValueError, match="unknown keys"):
        ClassifierConfig.from_dict({**CFG.to_dict(), "depth": 3})


def test_train_classifier_rejects_bad_input():
    model = VideoClassifier(CFG)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        train_classifier(model, lambda s: (torch.full((2, 3, 8, 32, 32), 255.0), torch.zeros(2, dtype=torch.long)),
                         steps=1, lr=1e-3, weight_decay=0.0)
