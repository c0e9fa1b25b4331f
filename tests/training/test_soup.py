"""`agegender soup`: a weighted mean of fine-tunes, written as a run folder that package and evaluate take."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from agegender.cli.main import main
from agegender.evaluation.card import render_card
from agegender.models.folder import ModelFolderError, load_model_folder, read_config, save_model_folder
from agegender.models.model import ModelConfig, build_model
from agegender.training.soup import average_weights, make_soup


def _folder(path: Path, seed: int, size: int = 32) -> Path:
    torch.manual_seed(seed)
    net = build_model(ModelConfig(backbone="scratch_cnn", input_size=size)).eval()
    return save_model_folder(net, path, {"training": {"recipe": {"name": f"seed{seed}"}}})


@pytest.fixture()
def split_file(tmp_path: Path) -> Path:
    path = tmp_path / "split.json"
    path.write_text(json.dumps({"fractions": [0.8, 0.1, 0.1], "assignment": {"abc": "train"}}))
    return path


def test_soup_is_the_weighted_mean_and_keeps_integer_buffers(tmp_path, split_file):
    a, b = _folder(tmp_path / "a", 1), _folder(tmp_path / "b", 2)
    out = make_soup([a, b], tmp_path / "soup", split_file, weights=[3, 1])
    sa, sb = load_model_folder(a).state_dict(), load_model_folder(b).state_dict()
    soup = load_model_folder(out / "model").state_dict()
    floats = [k for k, v in sa.items() if v.is_floating_point()]
    assert floats and all(torch.allclose(soup[k], 0.75 * sa[k] + 0.25 * sb[k], atol=1e-6) for k in floats)
    ints = [k for k, v in sa.items() if not v.is_floating_point()]
    assert all(torch.equal(soup[k], sa[k]) for k in ints)
    # the run folder is what `agegender package` takes; the record names the members and the last one's recipe
    assert (out / "split.json").read_bytes() == split_file.read_bytes()
    training = read_config(out / "model")["training"]
    assert training["soup"] == {"members": [str(a), str(b)], "weights": [0.75, 0.25]}
    assert training["recipe"]["name"] == "seed2"


def test_a_soup_of_a_soup_records_the_trainings_behind_it(tmp_path, split_file):
    a, b, c = (_folder(tmp_path / n, i) for i, n in enumerate("abc", 1))
    inner = make_soup([a, b], tmp_path / "inner", split_file)
    outer = make_soup([inner / "model", c], tmp_path / "outer", split_file)
    soup = read_config(outer / "model")["training"]["soup"]
    assert soup["members"] == [str(a), str(b), str(c)]
    assert soup["weights"] == pytest.approx([0.25, 0.25, 0.5])
    assert soup["averaged"] == {"members": [str(inner / "model"), str(c)], "weights": [0.5, 0.5]}
    # the weights are those shares: the nested average equals the flat one
    flat = make_soup([a, b, c], tmp_path / "flat", split_file, weights=[1, 1, 2])
    s_outer, s_flat = (load_model_folder(f / "model").state_dict() for f in (outer, flat))
    assert all(torch.allclose(s_outer[k], s_flat[k], atol=1e-6) for k in s_flat)
    assert "averaged" not in read_config(flat / "model")["training"]["soup"]
    # the card names the trainings and how the average was made
    text = render_card(outer / "model")
    assert f"`{a}` (0.25)" in text and f"`{c}` (0.50)" in text and f"`{inner / 'model'}` (0.50)" in text


def test_models_of_another_architecture_are_refused(tmp_path, split_file):
    a, b = _folder(tmp_path / "a", 1), _folder(tmp_path / "b", 2, size=48)
    same = load_model_folder(a).state_dict()
    with pytest.raises(ModelFolderError, match="weights must be >= 0"):
        average_weights([same, same], [1, -1])
    c = tmp_path / "c"
    torch.manual_seed(0)
    save_model_folder(build_model(ModelConfig(backbone="scratch_cnn", input_size=32, hidden=16)), c)
    with pytest.raises(ModelFolderError, match="another architecture"):
        make_soup([a, c], tmp_path / "soup", split_file)
    assert b.is_dir()


def test_cli_soup_checks_its_arguments(tmp_path, split_file, capsys):
    a, b = _folder(tmp_path / "a", 1), _folder(tmp_path / "b", 2)
    assert main(["soup", str(a), str(b), "--weights", "1", "--split-file", str(split_file), "--output", "x"]) == 2
    assert "2 models but 1 --weights" in capsys.readouterr().err
    out = tmp_path / "soup"
    assert main(["soup", str(a), str(b), "--split-file", str(split_file), "--output", str(out)]) == 0
    assert (out / "model" / "model.safetensors").is_file() and (out / "summary.json").is_file()
