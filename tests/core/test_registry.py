"""registry.yaml: type resolution, weight files, sha256, expert selection."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from mofrr_core import plugins
from mofrr_core.registry import (
    DEFAULT_REGISTRY,
    RegistryError,
    WeightsError,
    build_component,
    load_registry,
    sha256_of,
    weight_file,
)

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_packaged_registry_is_the_repo_registry():
    assert (REPO / "registry.yaml").read_text() == DEFAULT_REGISTRY.read_text()
    config = load_registry()
    assert config.threshold == 0.5
    assert config.router.type == "Router" and config.combine.type == "CombineModule"


def test_unknown_type_names_the_key(tmp_path):
    path = write(tmp_path, {"router": {"type": "NoSuchNet"}})
    with pytest.raises(plugins.UnknownTypeError, match=r"router\.type: unknown type 'NoSuchNet'"):
        load_registry(path)


def test_unknown_expert_names_the_entry(tmp_path):
    path = write(tmp_path, {"experts": ["white", "no_such_expert"]})
    with pytest.raises(RegistryError, match=r"experts\[1\].*'no_such_expert'"):
        load_registry(path, experts=["no_such_expert"])


def test_missing_weights_name_key_and_path(tmp_path):
    path = write(tmp_path, {"combine": {"type": "CombineModule", "weights": "nowhere/combine"}})
    config = load_registry(path)
    with pytest.raises(WeightsError, match=r"combine: weights not found: .*nowhere/combine"):
        build_component(config.combine)


def test_sha256_detects_tampering(tmp_path, tiny_combine):
    folder = tmp_path / "combine"
    tiny_combine.save_pretrained(folder)
    good = sha256_of(weight_file(folder))
    path = write(tmp_path, {"combine": {"type": "CombineModule", "weights": "combine", "sha256": good}})
    model = build_component(load_registry(path).combine)
    assert type(model).__name__ == "CombineModule"

    file = weight_file(folder)
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2])  # truncated download
    with pytest.raises(WeightsError, match=r"combine: .*safetensors does not match its sha256"):
        build_component(load_registry(path).combine)
    shutil.rmtree(folder)


def test_config_switches_apply_to_trained_weights(tmp_path, tiny_combine):
    tiny_combine.save_pretrained(tmp_path / "combine")
    entry = {"type": "CombineModule", "weights": "combine"}
    assert build_component(load_registry(write(tmp_path, {"combine": entry})).combine).config.use_refinement
    off = build_component(load_registry(write(tmp_path, {"combine": {**entry, "config": {"use_refinement": False}}}))
                          .combine)
    assert off.config.use_refinement is False
    for bad in ({"hidden_channels": 8}, {"use_refinement": "no"}, {"use_no_such_switch": False}):
        with pytest.raises(RegistryError, match=r"combine\.config: with trained weights only on/off switches"):
            build_component(load_registry(write(tmp_path, {"combine": {**entry, "config": bad}})).combine)


def test_invalid_fields_are_rejected(tmp_path):
    with pytest.raises(RegistryError, match=r"router: unknown field\(s\) weigths"):
        load_registry(write(tmp_path, {"router": {"type": "Router", "weigths": "x"}}))
    with pytest.raises(RegistryError, match="threshold"):
        load_registry(write(tmp_path, {"threshold": 1.5}))
    with pytest.raises(RegistryError, match="crop_size: must be between 64 and 1024 px, got 8"):
        load_registry(write(tmp_path, {"crop_size": 8}))
    assert load_registry(write(tmp_path, {"crop_size": 224})).crop_size == 224
    assert load_registry(write(tmp_path, {})).crop_size is None
    with pytest.raises(RegistryError, match="alignment: expected similarity or upright, got 'affine'"):
        load_registry(write(tmp_path, {"alignment": "affine"}))
    assert load_registry(write(tmp_path, {"alignment": "upright"})).alignment == "upright"
    with pytest.raises(RegistryError, match="router_crop: expected one of shared, own, native, got 'mine'"):
        load_registry(write(tmp_path, {"router_crop": "mine"}))
    assert load_registry(write(tmp_path, {"router_crop": "own"})).router_crop == "own"
    assert load_registry(write(tmp_path, {})).router_crop == "shared"
    with pytest.raises(RegistryError, match="router_context_types: expected a list of retouching types, got 'white'"):
        load_registry(write(tmp_path, {"router_context_types": "white"}))
    assert load_registry(write(tmp_path, {"router_context_types": ["white"]})).router_context_types == ["white"]
    assert load_registry(write(tmp_path, {})).router_context_types == []
    assert load_registry(write(tmp_path, {"router_native_range": [0.6, 1.3]})).router_native_range == (0.6, 1.3)
    assert load_registry(write(tmp_path, {})).router_native_range is None
    with pytest.raises(RegistryError, match=r"router_native_range: expected 0 < smallest <= largest, got \[1.3, 0.6\]"):
        load_registry(write(tmp_path, {"router_native_range": [1.3, 0.6]}))
    with pytest.raises(RegistryError, match="router_native_range: expected \\[smallest, largest\\], got 0.6"):
        load_registry(write(tmp_path, {"router_native_range": 0.6}))
    grid_native = {"range": [0.6, 0.9], "gates": ["face", "eye"]}
    assert load_registry(write(tmp_path, {"grid_native": grid_native})).grid_native == {
        "range": (0.6, 0.9), "gates": ["face", "eye"]}
    assert load_registry(write(tmp_path, {})).grid_native is None
    with pytest.raises(RegistryError, match=r"grid_native: expected \{range: \[smallest, largest\], gates"):
        load_registry(write(tmp_path, {"grid_native": {"range": [0.6, 0.9]}}))
    with pytest.raises(RegistryError, match=r"grid_native.range: expected 0 < smallest <= largest, got \[0.9, 0.6\]"):
        load_registry(write(tmp_path, {"grid_native": {**grid_native, "range": [0.9, 0.6]}}))
    with pytest.raises(RegistryError, match="grid_native.gates: expected a list of retouching types, got 'face'"):
        load_registry(write(tmp_path, {"grid_native": {**grid_native, "gates": "face"}}))
    assert load_registry(write(tmp_path, {"change_cap": 2})).change_cap == 2.0
    assert load_registry(write(tmp_path, {})).change_cap is None
    with pytest.raises(RegistryError, match="change_cap: must be positive, got -1.0"):
        load_registry(write(tmp_path, {"change_cap": -1}))
    confounded = {"smooth": {"face": 0.85, "eye": 0.9}}
    assert load_registry(write(tmp_path, {"confounded_gates": confounded})).confounded_gates == confounded
    assert load_registry(write(tmp_path, {})).confounded_gates == {}
    with pytest.raises(RegistryError, match=r"confounded_gates.smooth.face: expected a confidence in \(0, 1\)"):
        load_registry(write(tmp_path, {"confounded_gates": {"smooth": {"face": 1.5}}}))
    with pytest.raises(RegistryError, match="confounded_gates.smooth.smooth: expected a confidence"):
        load_registry(write(tmp_path, {"confounded_gates": {"smooth": {"smooth": 0.9}}}))
    with pytest.raises(RegistryError, match="confounded_gates: expected"):
        load_registry(write(tmp_path, {"confounded_gates": {"smooth": 0.9}}))
    with pytest.raises(RegistryError, match="confounded_gates.smooth.face: expected a number, got 'high'"):
        load_registry(write(tmp_path, {"confounded_gates": {"smooth": {"face": "high"}}}))
    assert load_registry(write(tmp_path, {"keep_low_frequencies": {"smooth": 8}})).keep_low_frequencies == {
        "smooth": 8.0}
    assert load_registry(write(tmp_path, {})).keep_low_frequencies == {}
    for bad in ({"smooth": 0}, {"smooth": -2}, {"smooth": True}, {"smooth": "wide"}, ["smooth"], 8):
        with pytest.raises(RegistryError, match="keep_low_frequencies: expected {type: blur sigma in px, positive}"):
            load_registry(write(tmp_path, {"keep_low_frequencies": bad}))
    assert load_registry(write(tmp_path, {"grid_gates": {"eye": 0.77}})).grid_gates == {"eye": 0.77}
    assert load_registry(write(tmp_path, {})).grid_gates == {}
    with pytest.raises(RegistryError, match=r"grid_gates.eye: expected a confidence in \(0, 1\), got 1.2"):
        load_registry(write(tmp_path, {"grid_gates": {"eye": 1.2}}))
    with pytest.raises(RegistryError, match="grid_gates: expected {type: confidence}"):
        load_registry(write(tmp_path, {"grid_gates": ["eye"]}))
    assert load_registry(write(tmp_path, {"skip_combine": ["eye"]})).skip_combine == ["eye"]
    assert load_registry(write(tmp_path, {})).skip_combine == []
    with pytest.raises(RegistryError, match="skip_combine: expected a list of retouching types, got 'eye'"):
        load_registry(write(tmp_path, {"skip_combine": "eye"}))
    assert load_registry(write(tmp_path, {"undo_enlargement": True})).undo_enlargement is True
    assert load_registry(write(tmp_path, {})).undo_enlargement is False
    with pytest.raises(RegistryError, match="undo_enlargement: expected true or false, got 'yes'"):
        load_registry(write(tmp_path, {"undo_enlargement": "yes"}))
    with pytest.raises(RegistryError, match="registry file not found"):
        load_registry(tmp_path / "absent.yaml")


def test_gate_blend(tmp_path):
    assert load_registry(write(tmp_path, {"experts": ["white"]})).gate_blend == "hard"
    assert load_registry(write(tmp_path, {"experts": ["white"], "gate_blend": "posterior"})).gate_blend == "posterior"
    with pytest.raises(RegistryError, match="gate_blend: expected hard or posterior, got 'soft'"):
        load_registry(write(tmp_path, {"experts": ["white"], "gate_blend": "soft"}))


def test_expert_strength(tmp_path):
    config = load_registry(write(tmp_path, {"experts": [{"name": "white", "strength": 0.25}, "eye"]}))
    assert [(e.name, e.strength) for e in config.experts] == [("white", 0.25), ("eye", 1.0)]
    with pytest.raises(RegistryError, match="experts.white.strength: must be between 0 and 1, got 1.5"):
        load_registry(write(tmp_path, {"experts": [{"name": "white", "strength": 1.5}]}))
    with pytest.raises(RegistryError, match="experts.white.strength: expected a number, got 'half'"):
        load_registry(write(tmp_path, {"experts": [{"name": "white", "strength": "half"}]}))
