import keras
import numpy as np
import pytest

from apps.translation import config as config_lib
from apps.translation.data import TranslationAssets
from apps.translation.model import TranslationModel, build_model
from layers.generation import BeamSearch, GreedySearch
from layers.losses import MaskedSequenceCrossentropy

SOURCES = np.array([[2, 5, 6, 7, 3], [2, 8, 3, 0, 0]], "int32")
TARGETS_IN = np.array([[2, 9, 10], [2, 11, 0]], "int32")
# Vocabularies of 20 source and 18 target tokens (the reserved four first).
RESERVED = ["[PAD]", "[UNK]", "[START]", "[END]"]
ASSETS = TranslationAssets(
    source_vocabulary=RESERVED + [f"s{index}" for index in range(16)],
    target_vocabulary=RESERVED + [f"t{index}" for index in range(14)],
    lowercase=True,
)


@pytest.fixture(autouse=True)
def float32_policy():
    yield
    keras.config.set_dtype_policy("float32")


def tiny_config(tie_embeddings=False):
    config = config_lib.tiny()
    config.model.tie_embeddings = tie_embeddings
    return config


@pytest.mark.parametrize("tie_embeddings", [False, True])
def test_a_trained_model_keras_file_round_trips_weights_compilation_and_searches(
    tmp_path, tie_embeddings
):
    keras.utils.set_random_seed(0)
    model = build_model(tiny_config(tie_embeddings), ASSETS)
    inputs = {"source": SOURCES, "target_in": TARGETS_IN}
    targets_out = np.array([[9, 10, 3], [11, 3, 0]], "int32")
    model.train_on_batch(inputs, targets_out, sample_weight=(targets_out != 0).astype("float32"))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, TranslationModel) and loaded.get_config() == model.get_config()
    assert isinstance(loaded.loss, MaskedSequenceCrossentropy) and loaded.loss.pad_id == 0
    for weight, loaded_weight in zip(model.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(weight.numpy(), loaded_weight.numpy())
    np.testing.assert_array_equal(model(inputs), loaded(inputs))
    for search in (GreedySearch(), BeamSearch(3, length_penalty=1.0)):
        expected = model.generator(12, 1.5, 2).generate(SOURCES, search)
        actual = loaded.generator(12, 1.5, 2).generate(SOURCES, search)
        np.testing.assert_array_equal(actual[0], expected[0])
        np.testing.assert_allclose(actual[1], expected[1], rtol=1e-6)
    weights = loaded.attention_weights(SOURCES, TARGETS_IN)
    # (batch, target_time, source_time): no weight on padded source steps, rows sum to 1.
    np.testing.assert_allclose(weights[1, :, 3:], 0.0, atol=1e-7)
    np.testing.assert_allclose(np.sum(weights, axis=-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("tie_embeddings", [False, True])
def test_mixed_precision_keeps_float32_logits(tie_embeddings):
    keras.config.set_dtype_policy("mixed_float16")
    model = build_model(tiny_config(tie_embeddings), ASSETS)
    assert model.decoder.compute_dtype == "float16"
    assert model({"source": SOURCES, "target_in": TARGETS_IN}).dtype == "float32"


def test_tied_logits_are_the_decoder_outputs_against_the_target_embedding_table():
    keras.utils.set_random_seed(1)
    model = build_model(tiny_config(tie_embeddings=True), ASSETS)
    table = model.target_embedding.embeddings.numpy()
    assert table.shape == (len(ASSETS.target_vocabulary), model.decoder.units)
    assert not any("logits" in weight.path for weight in model.weights)
    inputs = {"source": SOURCES, "target_in": TARGETS_IN}
    encoding = model.encode(SOURCES)
    decoded = model.decoder(
        model.target_embedding(TARGETS_IN), encoding.context["encoder_sequences"],
        initial_state=encoding.state, mask=TARGETS_IN != 0,
        encoder_mask=encoding.context["encoder_mask"],
    )  # fmt: skip
    expected = np.asarray(decoded) @ table.T
    mask = TARGETS_IN != 0
    np.testing.assert_allclose(np.asarray(model(inputs))[mask], expected[mask], atol=1e-5)
    # Greedy search reads the same table: each token is the teacher-forced argmax of its
    # prefix (padding and [START] suppressed).
    tokens, _ = model.generator(6).generate(SOURCES, GreedySearch())
    tokens = np.asarray(tokens)
    target_in = np.concatenate([np.full((2, 1), 2, "int32"), tokens[:, :-1]], axis=1)
    logits = np.array(model({"source": SOURCES, "target_in": target_in}))
    logits[..., [0, 2]] = -np.inf
    produced = tokens != 0
    np.testing.assert_array_equal(np.argmax(logits, axis=-1)[produced], tokens[produced])
