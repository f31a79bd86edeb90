import os
import pickle
from pathlib import Path

import pytest
import torch

from exporter.errors import WeightsError
from exporter.models import load_model
from runtimes.architectures import build_float_model


def test_random_weights_are_labelled_untrained():
    lm = load_model("resnet18", "random")
    assert lm.weights.trained is False
    assert "UNTRAINED" in lm.weights.label
    assert lm.num_classes == 1000


def test_imagenet_offline_gives_one_clear_line(monkeypatch, tmp_path):
    # An empty hub cache and no network: the download must fail with advice, not a traceback.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    import urllib.request

    def offline(*a, **k):
        raise urllib.error.URLError("network unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(WeightsError) as exc:
        load_model("resnet18", "imagenet")
    msg = str(exc.value)
    assert "--weights random" in msg and "--weights PATH" in msg and "\n" not in msg


def test_checkpoint_state_dict_and_wrapped_dict(tmp_path):
    m = build_float_model("resnet18", 7)
    sd = m.state_dict()
    torch.save(sd, tmp_path / "plain.pt")
    torch.save({"epoch": 3, "state_dict": {"module." + k: v for k, v in sd.items()}}, tmp_path / "ckpt.pth")
    for name in ("plain.pt", "ckpt.pth"):
        lm = load_model("resnet18", str(tmp_path / name))
        assert lm.num_classes == 7  # inferred from the classifier's shape
        assert lm.weights.source == "checkpoint" and lm.weights.sha256
        assert torch.equal(lm.model.fc.weight, m.fc.weight)


def test_corrupt_checkpoint(tmp_path):
    p = tmp_path / "bad.pt"
    p.write_bytes(b"this is not a checkpoint" * 10)
    with pytest.raises(WeightsError, match="corrupt or not a PyTorch checkpoint|refused"):
        load_model("resnet18", str(p))


def test_truncated_checkpoint(tmp_path):
    torch.save(build_float_model("resnet18", 10).state_dict(), tmp_path / "full.pt")
    data = (tmp_path / "full.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError):
        load_model("resnet18", str(tmp_path / "cut.pt"))


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/shrinkwrap-pwned",))


def test_pickle_that_runs_code_is_refused(tmp_path):
    marker = Path("/tmp/shrinkwrap-pwned")
    marker.unlink(missing_ok=True)
    p = tmp_path / "evil.pt"
    torch.save({"state_dict": {"fc.weight": torch.zeros(2, 2)}, "payload": _Evil()}, p)
    with pytest.raises(WeightsError, match="refused"):
        load_model("resnet18", str(p))
    assert not marker.exists()
    # A raw pickle file (not torch's zip format) is refused too.
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(WeightsError):
        load_model("resnet18", str(raw))
    assert not marker.exists()


def test_checkpoint_for_another_architecture_names_keys(tmp_path):
    torch.save(build_float_model("resnet50", 10).state_dict(), tmp_path / "r50.pt")
    with pytest.raises(WeightsError) as exc:
        load_model("resnet18", str(tmp_path / "r50.pt"))
    msg = str(exc.value)
    assert "does not fit resnet18" in msg and "unexpected keys" in msg and "conv3" in msg


def test_missing_file_and_unknown_model(tmp_path):
    with pytest.raises(WeightsError, match="no such file"):
        load_model("resnet18", str(tmp_path / "nope.pt"))
    with pytest.raises(WeightsError, match="unknown or unsupported model 'vgg99'"):
        load_model("vgg99", "random")


def test_resnet50_builds():
    lm = load_model("resnet50", "random")
    assert lm.model.fc.in_features == 2048


@pytest.mark.parametrize("arch", ["mobilenet_v2", "squeezenet1_0"])
def test_checkpoint_of_another_family_finds_its_classifier(arch, tmp_path):
    """The classifier is found from the model (classifier.1 here), not the literal "fc"."""
    m = build_float_model(arch, 5)
    torch.save(m.state_dict(), tmp_path / "w.pt")
    lm = load_model(arch, str(tmp_path / "w.pt"))
    assert lm.num_classes == 5


def test_unknown_model_lists_torchvisions():
    with pytest.raises(WeightsError, match="unknown or unsupported model 'resnet19'.*resnet18"):
        load_model("resnet19", "random")


def test_a_checkpoint_of_another_family_names_the_model_it_fits(tmp_path):
    torch.save(build_float_model("resnet18", 7).state_dict(), tmp_path / "r18.pt")
    with pytest.raises(WeightsError) as exc:
        load_model("efficientnet_b0", str(tmp_path / "r18.pt"))
    msg = str(exc.value)
    assert "not a checkpoint of efficientnet_b0" in msg and "it fits resnet18: pass --model resnet18" in msg
    assert "\n" not in msg


def test_random_weights_keep_their_scale_in_every_family():
    """Untrained EfficientNet logits were ~1e-14 with torchvision's initial BatchNorm statistics: the random
    model's statistics are set from synthetic inputs, so every layer stays at unit scale."""
    lm = load_model("efficientnet_b0", "random")
    with torch.no_grad():
        logits = lm.model(torch.randn(4, 3, 64, 64))
    assert float(logits.std()) > 1e-2
    assert "BatchNorm statistics from synthetic inputs" in lm.weights.label
