"""Plugin discovery: entry points, allow-list, broken plugins, duplicate names."""

from __future__ import annotations

import importlib.metadata as metadata
import sys
import types

import pytest

from mofrr_core import ExpertSpec, RetouchOpSpec, hookimpl, plugins


def make_module(name: str, **hooks) -> types.ModuleType:
    module = types.ModuleType(name)
    for hook_name, fn in hooks.items():
        setattr(module, hook_name, hookimpl(fn))
    sys.modules[name] = module
    return module


def expert_plugin(module_name: str, expert_name: str) -> types.ModuleType:
    def register_experts(register):
        register(ExpertSpec(name=expert_name, retouch_type=expert_name))

    return make_module(module_name, register_experts=register_experts)


@pytest.fixture
def fake_entry_points(monkeypatch):
    """Replace installed entry points by the given fake ones (a fake distribution)."""

    def install(*entries: tuple[str, str]) -> None:
        eps = [metadata.EntryPoint(name=name, value=value, group="mofrr") for name, value in entries]
        monkeypatch.setattr(plugins.metadata, "entry_points", lambda group=None: eps)
        plugins.reset()

    yield install
    plugins.reset()


def test_fake_distribution_is_discovered(fake_entry_points, monkeypatch):
    monkeypatch.delenv("MOFRR_PLUGINS", raising=False)
    expert_plugin("fake_lips_plugin", "lips")
    fake_entry_points(("lips", "fake_lips_plugin"))
    experts = plugins.get_experts()
    assert set(experts) == {"lips"}
    assert experts["lips"].retouch_type == "lips"
    assert plugins.get_state().plugins["lips"].status == "ok"


def test_allow_list_is_honoured(fake_entry_points, monkeypatch):
    expert_plugin("fake_a_plugin", "a")
    expert_plugin("fake_b_plugin", "b")
    fake_entry_points(("a", "fake_a_plugin"), ("b", "fake_b_plugin"))
    monkeypatch.setenv("MOFRR_PLUGINS", "b")
    assert set(plugins.get_experts()) == {"b"}
    assert plugins.get_state().plugins["a"].status == "disabled"
    monkeypatch.setenv("MOFRR_PLUGINS", "")
    plugins.reset()
    assert plugins.get_experts() == {}  # built-ins only
    assert "mofrr.models" in plugins.get_state().plugins


def test_broken_plugins_are_isolated(fake_entry_points, monkeypatch):
    monkeypatch.delenv("MOFRR_PLUGINS", raising=False)

    def register_experts(register):
        raise RuntimeError("weights index corrupt")

    make_module("fake_raises_on_register", register_experts=register_experts)
    expert_plugin("fake_good_plugin", "good")
    fake_entry_points(("bad_register", "fake_raises_on_register"), ("bad_import", "no_such_module_xyz"),
                      ("good", "fake_good_plugin"))
    with pytest.warns(UserWarning, match="bad_import"):
        state = plugins.get_state()
    assert set(state.experts) == {"good"}
    broken = {info.name: info.error for info in state.broken}
    assert "weights index corrupt" in broken["bad_register"]
    assert "no_such_module_xyz" in broken["bad_import"]


def test_duplicate_expert_names_are_rejected(fake_entry_points, monkeypatch):
    monkeypatch.delenv("MOFRR_PLUGINS", raising=False)
    expert_plugin("fake_eye_one", "eye2")
    expert_plugin("fake_eye_two", "eye2")
    fake_entry_points(("eye_one", "fake_eye_one"), ("eye_two", "fake_eye_two"))
    with pytest.warns(UserWarning, match="registered by both"):
        state = plugins.get_state()
    assert set(state.experts) == {"eye2"}
    (broken,) = [info for info in state.broken if not info.builtin]
    assert broken.name == "eye_two"
    assert "'eye2'" in broken.error and "fake_eye_one" in broken.error and "fake_eye_two" in broken.error


def test_registering_a_wrong_object_is_reported(fake_entry_points, monkeypatch):
    monkeypatch.delenv("MOFRR_PLUGINS", raising=False)

    def register_retouch_ops(register):
        register({"name": "nose"})

    make_module("fake_wrong_object", register_retouch_ops=register_retouch_ops)
    fake_entry_points(("wrong", "fake_wrong_object"))
    with pytest.warns(UserWarning, match="RetouchOpSpec"):
        state = plugins.get_state()
    assert state.plugins["wrong"].status == "broken"


def test_retouch_ops_keep_several_apis(fake_entry_points, monkeypatch):
    monkeypatch.delenv("MOFRR_PLUGINS", raising=False)

    def register_retouch_ops(register):
        register(RetouchOpSpec(name="nose", fn=lambda *a: None, api="one"))
        register(RetouchOpSpec(name="nose", fn=lambda *a: None, api="two"))

    make_module("fake_two_apis", register_retouch_ops=register_retouch_ops)
    fake_entry_points(("two", "fake_two_apis"))
    assert set(plugins.get_retouch_ops()["nose"]) == {"one", "two"}


def test_installed_fixture_package_is_discovered(monkeypatch):
    """The real package under tests/fixtures is pip-installed in the test venv (see README)."""
    if not any(ep.name == "fixture_nose" for ep in metadata.entry_points(group="mofrr")):
        pytest.fail("tests/fixtures/mofrr-plugin-fixture is not installed: pip install -e it (README)")
    monkeypatch.delenv("MOFRR_PLUGINS", raising=False)
    plugins.reset()
    state = plugins.get_state()
    assert state.experts["nose"].distribution == "mofrr-plugin-fixture"
    assert "nose" in state.retouch_ops
    monkeypatch.setenv("MOFRR_PLUGINS", "eye")
    plugins.reset()
    assert "nose" not in plugins.get_experts()
    plugins.reset()


def test_a_plugin_dataset_type_is_what_data_type_selects(fake_entry_points, monkeypatch):
    from mofrr_core.train.config import make_config
    from mofrr_core.train.datasets import build_dataset

    monkeypatch.delenv("MOFRR_PLUGINS", raising=False)
    asked = {}

    def build_ones(config, split, **request):
        asked.update(request, split=split)
        return [{"key": f"ones-{i}"} for i in range(request["length"] or 3)]

    make_module("fake_ones_data", register_datasets=lambda register: register(build_ones, name="Ones"))
    fake_entry_points(("ones", "fake_ones_data"))
    assert set(plugins.get_state().datasets) == {"RetouchPairs", "SyntheticPairs", "Ones"}
    config = make_config("tiny", stage="router", data={"type": "Ones"}, seed=5)
    data = build_dataset(config, "val", types=["white"], ops=None, num_ops=(0, 1), length=2)
    assert [item["key"] for item in data] == ["ones-0", "ones-1"]
    assert asked == {"split": "val", "types": ["white"], "ops": None, "num_ops": (0, 1), "p_clean": 0.0,
                     "length": 2, "seed": 5, "cache": None}
    config = make_config("tiny", stage="router", data={"type": "Nones"})
    with pytest.raises(plugins.UnknownTypeError, match=r"data\.type: unknown dataset type 'Nones' \(registered "
                                                       r"dataset types: Ones, RetouchPairs, SyntheticPairs\)"):
        build_dataset(config, "train", types=["white"], ops=None, num_ops=(1, 1))
