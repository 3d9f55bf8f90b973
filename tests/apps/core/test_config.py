import dataclasses
import typing

import pytest

from apps.core import config as config_lib
from apps.core.errors import UserError


@dataclasses.dataclass
class ModelSection:
    units: int = 8
    rate: float = 0.5
    bidirectional: bool = False
    cell: str = "lstm"
    pooling: tuple[str, ...] = ("mean",)
    limit: int | None = None


@dataclasses.dataclass
class ExampleConfig:
    model: ModelSection = dataclasses.field(default_factory=ModelSection)
    training: config_lib.TrainingConfig = dataclasses.field(
        default_factory=config_lib.TrainingConfig
    )


def test_overrides_are_parsed_by_declared_type():
    config = config_lib.apply_overrides(
        ExampleConfig(),
        [
            "model.units=64",
            "model.rate=0.25",
            "model.bidirectional=true",
            "model.cell=gru",
            "model.pooling=max,mean",
            "model.limit=none",
            "training.clip_norm=2",
        ],
    )
    assert config.model == ModelSection(64, 0.25, True, "gru", ("max", "mean"), None)
    assert config.training.clip_norm == 2.0
    config_lib.apply_overrides(config, ["model.limit=5"])
    assert config.model.limit == 5


def test_unknown_key_names_the_valid_ones():
    with pytest.raises(UserError) as error:
        config_lib.apply_overrides(ExampleConfig(), ["model.unit=3"])
    message = str(error.value)
    assert "'model.unit'" in message and "model.units" in message and "training.epochs" in message


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("model.units=many", "model.units: expected int, got 'many'"),
        ("model.rate=fast", "model.rate: expected float"),
        ("model.bidirectional=maybe", "expected a boolean"),
        ("model.units", "--set expects key=value"),
    ],
)
def test_bad_values_are_rejected_with_the_key(override, expected):
    with pytest.raises(UserError, match=expected):
        config_lib.apply_overrides(ExampleConfig(), [override])


def test_json_round_trip_is_exact(tmp_path):
    config = config_lib.apply_overrides(ExampleConfig(), ["model.pooling=max,last", "model.rate=1"])
    path = tmp_path / "config.json"
    config_lib.save(config, path)
    assert config_lib.load(ExampleConfig, path) == config


def test_loading_rejects_unknown_keys_and_wrong_types(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"model": {"units": 4, "colour": "red"}}')
    with pytest.raises(UserError, match="unknown config key 'model.colour'"):
        config_lib.load(ExampleConfig, path)
    path.write_text('{"model": {"units": "four"}}')
    with pytest.raises(UserError, match="model.units: expected int"):
        config_lib.load(ExampleConfig, path)
    with pytest.raises(UserError, match="config file not found"):
        config_lib.load(ExampleConfig, tmp_path / "missing.json")


@dataclasses.dataclass
class ChoiceConfig:
    precision: typing.Literal["off", "mixed_float16", "mixed_bfloat16"] = "off"
    heads: tuple[typing.Literal[1, 2, 4], ...] = (1,)


def test_literal_fields_take_only_their_choices():
    config = config_lib.apply_overrides(ChoiceConfig(), ["precision=mixed_bfloat16", "heads=2,4"])
    assert config == ChoiceConfig("mixed_bfloat16", (2, 4))
    with pytest.raises(UserError) as error:
        config_lib.apply_overrides(ChoiceConfig(), ["precision=x"])
    assert str(error.value) == (
        "precision: expected one of off, mixed_float16, mixed_bfloat16; got 'x'"
    )
    with pytest.raises(UserError, match=r"heads: expected one of 1, 2, 4; got '3'"):
        config_lib.apply_overrides(ChoiceConfig(), ["heads=3"])


def test_literal_fields_are_checked_when_loaded(tmp_path):
    path = tmp_path / "config.json"
    config_lib.save(ChoiceConfig("mixed_float16", (4, 1)), path)
    assert config_lib.load(ChoiceConfig, path) == ChoiceConfig("mixed_float16", (4, 1))
    for values, message in [
        ('{"precision": "float16"}', "precision: expected one of off, mixed_float16, "),
        ('{"heads": [2, true]}', "heads: expected one of 1, 2, 4; got True"),
        ('{"heads": ["2"]}', "heads: expected one of 1, 2, 4; got '2'"),
    ]:
        path.write_text(values)
        with pytest.raises(UserError, match=message):
            config_lib.load(ChoiceConfig, path)


def test_the_training_config_rejects_an_unknown_precision():
    with pytest.raises(UserError) as error:
        config_lib.apply_overrides(ExampleConfig(), ["training.mixed_precision=x"])
    assert str(error.value) == (
        "training.mixed_precision: expected one of off, mixed_float16, mixed_bfloat16, auto; "
        "got 'x'"
    )
