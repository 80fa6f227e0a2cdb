import pytest

from asr.config import Config, ConfigError, from_dict, load_config, to_dict


def test_yaml_and_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("model:\n  d_model: 64\noptim:\n  betas: [0.9, 0.99]\n")
    cfg = load_config(Config, p, ["model.enc_layers=2", "optim.lr=1e-3", "trainer.devices=2"])
    assert cfg.model.d_model == 64 and cfg.model.enc_layers == 2
    assert cfg.optim.betas == (0.9, 0.99) and cfg.optim.lr == 1e-3
    assert cfg.trainer == {"devices": 2}
    assert cfg.model.dec_layers == Config().model.dec_layers  # untouched default
    assert from_dict(Config, to_dict(cfg)) == cfg


@pytest.mark.parametrize("override", ["model.d_modle=3", "nonsense=1", "model.d_model=big", "model=3"])
def test_unknown_keys_and_bad_types_are_errors(override):
    with pytest.raises(ConfigError):
        load_config(Config, None, [override])


def test_configs_in_repo_load():
    from pathlib import Path

    files = sorted(Path(__file__).parents[1].glob("configs/*.yaml"))
    assert {f.stem for f in files} >= {"tiny", "small", "base"}
    for f in files:
        load_config(Config, f)


def test_trainer_overrides_add_up(tmp_path):
    """Multi-GPU/multi-node runs are config changes: YAML trainer keys and several overrides combine."""
    p = tmp_path / "c.yaml"
    p.write_text("trainer:\n  strategy: ddp\n  devices: 8\n")
    cfg = load_config(Config, p, ["trainer.devices=4", "trainer.num_nodes=2", "trainer.precision=bf16-mixed"])
    assert cfg.trainer == {"strategy": "ddp", "devices": 4, "num_nodes": 2, "precision": "bf16-mixed"}


def test_recipe_training_configs_load():
    from pathlib import Path

    files = sorted(Path(__file__).parents[1].glob("recipes/*/conf/train_*.yaml"))
    assert len(files) >= 4
    for f in files:
        load_config(Config, f)
