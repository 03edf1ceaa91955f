"""Broken or missing weights: detected before any image is touched, with the file and the fix named."""

from __future__ import annotations

import hashlib
import json
import re
import shutil

import pytest
from PIL import Image

from mofrr_core.cli import main


@pytest.fixture
def photo(tmp_path, astronaut_face):
    Image.fromarray(astronaut_face).save(tmp_path / "a.png")
    return tmp_path / "a.png"


def weight_file(folder):
    return next(folder.glob("*.safetensors"))


def write_registry(path, router_dir, sha256):
    path.write_text(f"""resolution: 32
sampling: {{num_inference_steps: 1}}
router: {{type: Router, weights: {router_dir}, sha256: {sha256}}}
combine: {{type: CombineModule, preset: tiny}}
experts:
  - {{name: nose, preset: tiny}}
""")
    return path


@pytest.mark.filterwarnings("ignore:combine. no weights")
def test_tampered_or_truncated_registry_weights_are_refused(tmp_path, photo, pipeline_dir, cli):
    router = tmp_path / "router"
    shutil.copytree(pipeline_dir / "router", router)
    file = weight_file(router)
    registry = write_registry(tmp_path / "registry.yaml", router, hashlib.sha256(file.read_bytes()).hexdigest())
    with pytest.warns(UserWarning, match="experts.nose: skipped"):  # the fixture plugin ships no weights
        assert cli(photo, "-o", tmp_path / "ok", "--aligned", "--registry", registry, pipeline=False).code == 0

    data = bytearray(file.read_bytes())
    data[-50] ^= 0x01  # one flipped bit
    file.write_bytes(bytes(data))
    with pytest.warns(UserWarning):
        result = cli(photo, "-o", tmp_path / "tampered", "--aligned", "--registry", registry, pipeline=False)
    assert result.code == 2 and str(file) in result.err and "sha256" in result.err and "reinstall" in result.err
    assert "Traceback" not in result.err and not (tmp_path / "tampered").exists()

    file.write_bytes(bytes(data[: len(data) // 3]))
    with pytest.warns(UserWarning):
        result = cli(photo, "-o", tmp_path / "truncated", "--aligned", "--registry", registry, pipeline=False)
    assert result.code == 2 and str(file) in result.err and "truncated" in result.err


@pytest.mark.parametrize("component", ["router", "experts/eye"])
def test_truncated_file_in_a_pipeline_folder_is_named(tmp_path, photo, pipeline_dir, capsys, component):
    broken = tmp_path / "pipeline"
    shutil.copytree(pipeline_dir, broken)
    file = weight_file(broken / component)
    file.write_bytes(file.read_bytes()[:-10])
    capsys.readouterr()
    code = main(["restore", str(photo), "-o", str(tmp_path / "out"), "--aligned", "--pipeline", str(broken)])
    err = capsys.readouterr().err
    assert code == 2 and not (tmp_path / "out").exists()
    assert str(file) in err and "truncated" in err and "save_pretrained" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_missing_pipeline_folder_is_a_usage_error(tmp_path, photo, cli):
    result = cli(photo, "-o", tmp_path / "out", "--aligned", "--pipeline", tmp_path / "nope", pipeline=False)
    assert result.code == 2 and "nope" in result.err


def test_expert_without_weights_is_listed_and_skipped(tmp_path, photo, pipeline_dir, cli, monkeypatch):
    from mofrr_core.plugins import get_state
    from mofrr_core.spec import ExpertSpec

    ghost = ExpertSpec(name="ghost", retouch_type="ghost", weights=tmp_path / "no-weights-here", preset="tiny",
                       distribution="mofrr-expert-ghost")
    monkeypatch.setitem(get_state().experts, "ghost", ghost)
    listing = cli("--json", command="experts", pipeline=False)
    rows = {row["name"]: row for row in json.loads(listing.out)}
    assert rows["ghost"]["weights"] == "missing" and rows["ghost"]["package"] == "mofrr-expert-ghost"

    router = tmp_path / "router"
    shutil.copytree(pipeline_dir / "router", router)
    registry = write_registry(tmp_path / "registry.yaml", router, "")
    registry.write_text(registry.read_text().replace("name: nose", "name: ghost"))
    with pytest.warns(UserWarning) as caught:
        result = cli(photo, "-o", tmp_path / "out", "--aligned", "--registry", registry, pipeline=False)
    messages = [str(w.message) for w in caught]
    assert any(re.search(r"experts.ghost: skipped, its weights are missing .*reinstall mofrr-expert-ghost", m)
               for m in messages), messages
    assert result.code == 0 and (tmp_path / "out" / "a.png").is_file()
    assert "ghost" not in result.out.split("experts run:")[-1]
