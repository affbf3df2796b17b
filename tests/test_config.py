"""Presets are typed and validated; a bad one is refused with a sentence naming key, value and what is allowed."""
import pytest

from engine.config import Config, ConfigError
from engine.presets import load_preset, preset_paths, to_toml
import tomllib


def write(tmp_path, text):
    path = tmp_path / "bad.toml"
    path.write_text('name = "bad"\n' + text)
    return path


def test_every_shipped_preset_loads_and_round_trips():
    names = {p.stem for p in preset_paths()}
    assert {"painter", "ring8", "grid25", "dcgan_fashion", "wgan_clip_fashion", "wgan_gp_fashion", "lsgan_fashion",
            "hinge_fashion", "cgan_fashion", "acgan_fashion", "infogan_fashion"} <= names
    for path in preset_paths():
        config = load_preset(path)
        again = Config.from_dict(tomllib.loads(to_toml(config)))
        assert again == config


def test_wgan_clip_preset_is_algorithm_one():
    c = load_preset("wgan_clip_fashion")
    assert (c.loss.name, c.loss.clip, c.optim.optimizer_d, c.train.discriminator_steps) == ("wgan", 0.01, "rmsprop", 5)
    gp = load_preset("wgan_gp_fashion")
    assert (gp.loss.gp_weight, gp.train.discriminator_steps) == (10.0, 5)


@pytest.mark.parametrize("text, words", [
    ("[train]\nfoo = 1\n", ["'train.foo'", "discriminator_steps"]),
    ("[train]\ndiscriminator_steps = 0\n", ["train.discriminator_steps", "0", ">= 1"]),
    ("[train]\ndiscriminator_steps = 'five'\n", ["train.discriminator_steps", "'five'", "integer"]),
    ("[optim]\nlr_d = -0.001\n", ["optim.lr_d", "-0.001", "> 0.0"]),
    ("[loss]\nname = 'wasserstein2'\n", ["loss.name", "'wasserstein2'", "'hinge'", "'wgan_gp'"]),
    ("colour = 'red'\n", ["'colour'", "[train]"]),
    ("[model]\ninfo_categorical = [10, 1]\n", ["model.info_categorical[1]", "2 to 100"]),
])
def test_bad_preset_is_refused_with_key_value_and_allowed(tmp_path, text, words):
    with pytest.raises(ConfigError) as info:
        load_preset(write(tmp_path, text))
    message = str(info.value)
    for word in words:
        assert word in message, message
    assert message.count("\n") == 0


def test_overrides_go_through_the_same_validation():
    config = load_preset("ring8", ["k=3", "lr_d=1e-4", "optim.betas_g=[0.0, 0.9]", "batch_size=32"])
    assert config.train.discriminator_steps == 3
    assert config.optim.lr_d == 1e-4
    assert config.optim.betas_g == [0.0, 0.9]
    assert config.data.batch_size == 32
    with pytest.raises(ConfigError, match=r"train.discriminator_steps = 0 .*>= 1"):
        load_preset("ring8", ["k=0"])
    with pytest.raises(ConfigError, match="key=value"):
        load_preset("ring8", ["k"])
    with pytest.raises(ConfigError, match="Unknown key 'nonsense'"):
        load_preset("ring8", ["nonsense=1"])


def test_cross_field_rules_name_both_keys():
    with pytest.raises(ConfigError, match="d_batchnorm.*wgan_gp"):
        load_preset("dcgan_fashion", ["loss.name=wgan_gp"])
    with pytest.raises(ConfigError, match="dcgan.*ring8"):
        load_preset("ring8", ["architecture=dcgan"])


def test_unknown_preset_lists_the_real_ones():
    with pytest.raises(ConfigError, match="No preset named 'nope'.*ring8"):
        load_preset("nope")
