"""Router temperature: logits divided by it; `mofrr-train calibrate` fits it without touching the weights."""

import json
import os
from pathlib import Path

import pytest
import torch

from mofrr_core.models import Router
from mofrr_core.registry import sha256_of
from mofrr_core.train.cli import main


def test_temperature_scales_logits_but_not_decisions():
    torch.manual_seed(0)
    router = Router(base_channels=8, stage_blocks=(1, 1), input_size=32).eval()
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    plain = router(x)
    router.register_to_config(temperature=2.5)
    assert torch.allclose(router(x), plain / 2.5)
    assert torch.equal(router(x) > 0, plain > 0)


def test_calibrate_writes_the_temperature_and_keeps_the_weights(tmp_path, capsys):
    root = Path(os.environ["MOFRR_DATA"])
    if not any(root.glob("*.tar")):
        pytest.skip(f"no face shards in MOFRR_DATA={root}")
    torch.manual_seed(0)
    router = Router(base_channels=8, stage_blocks=(1, 1), input_size=32)
    with torch.no_grad():  # an over-confident router: large logits
        for gate in router.gates.values():
            gate.net.weight.mul_(50.0)
    router.save_pretrained(tmp_path / "router")
    weights = sha256_of(tmp_path / "router" / "diffusion_pytorch_model.safetensors")
    assert main(["calibrate", str(tmp_path / "router"), "--data", str(root), "-n", "24"]) == 0
    out = capsys.readouterr().out
    temperature = json.loads((tmp_path / "router" / "config.json").read_text())["temperature"]
    assert temperature > 1.0 and f"temperature {temperature:.3f}" in out
    before, after = (float(v) for v in out.split("ECE ")[1].split(" (")[0].split(" -> "))
    assert after <= before
    assert sha256_of(tmp_path / "router" / "diffusion_pytorch_model.safetensors") == weights
    assert Router.from_pretrained(tmp_path / "router").config.temperature == temperature
