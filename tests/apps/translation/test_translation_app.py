"""The translation app end to end on the tiny preset: it must learn to reverse word sequences."""

from __future__ import annotations

import base64
import csv
import json
import random
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from command_lines import command_line
from tensorflow_serving.apis import prediction_log_pb2

from apps.core import training
from apps.translation import main
from apps.translation.app import APP
from layers.cudnn import cudnn_problems

WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
]


def write_reversal_pairs(path: Path, count: int, seed: int = 0) -> Path:
    """A TSV of 2-5 word sequences and the same words reversed, every source distinct."""
    rng = random.Random(seed)
    seen = set()
    lines = ["words\treversed"]
    while len(seen) < count:
        words = tuple(rng.choice(WORDS) for _ in range(rng.randint(2, 5)))
        if words not in seen:
            seen.add(words)
            lines.append(f"{' '.join(words)}\t{' '.join(reversed(words))}")
    path.write_text("\n".join(lines) + "\n")
    return path


COLUMN_SETTINGS = ("data.source_column=words", "data.target_column=reversed")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model trained to reverse 1,200 sequences, evaluated and exported."""
    root = tmp_path_factory.mktemp("translation")
    data = write_reversal_pairs(root / "reverse.tsv", 1500)
    workdir = root / "run"
    settings = ("training.epochs=6", *COLUMN_SETTINGS)
    assert main(command_line("train --preset tiny", *settings, workdir=workdir, data=data)) == 0
    assert main(["evaluate", "--workdir", str(workdir)]) == 0
    export_root = root / "saved_models"
    assert main(["export", "--workdir", str(workdir), "--export-dir", str(export_root)]) == 0
    return {"root": root, "workdir": workdir, "export": export_root / "translation" / "1"}


def test_tiny_model_learns_to_reverse_held_out_sequences(trained):
    metrics = json.loads((trained["workdir"] / "metrics.json").read_text())
    assert metrics["split"] == {"train": 1200, "validation": 150, "test": 150}
    assert metrics["exact_match_greedy"] >= 0.9, metrics
    assert metrics["exact_match_beam4"] >= metrics["exact_match_greedy"] - 0.02, metrics
    assert metrics["bleu_greedy"] >= 90.0 and metrics["token_accuracy"] >= 0.95
    sample = metrics["samples"][0]
    assert sample["reference"] == " ".join(reversed(sample["source"].split()))


def test_validation_bleu_is_logged_every_epoch_and_rises(trained):
    # val_bleu (greedy decoding of the validation pairs) is what checkpoints, early stopping
    # and tuning follow for this app.
    with (trained["workdir"] / "history.csv").open() as handle:
        bleu = [float(row["val_bleu"]) for row in csv.DictReader(handle)]
    assert len(bleu) == 6
    assert bleu[0] < 50.0 < 90.0 <= max(bleu), bleu


def test_fresh_process_answers_including_bad_input(trained, fresh_process_client):
    instances = [
        "alpha bravo charlie",
        "",
        "kilo zebra lima",
        "kilo " * 2500,
        {"b64": base64.b64encode(b"mike \xff\xfe lima").decode()},
    ]
    answer = fresh_process_client(trained["export"], {"instances": instances})
    assert answer["project_modules_loaded"] == []
    translation, score = answer["outputs"]["translation"], answer["outputs"]["score"]
    assert translation["dtype"] == "string" and translation["shape"] == [5]
    assert score["dtype"] == "float32" and score["shape"] == [5]
    assert translation["value"][0] == "charlie bravo alpha"
    assert translation["value"][1] == "" and score["value"][1] == 0.0
    assert all(value < 0.0 for index, value in enumerate(score["value"]) if index != 1)
    assert translation["value"][3].split()[0] == "kilo"  # answered after truncation
    assert (trained["export"] / "assets.extra" / "tf_serving_warmup_requests").is_file()


def test_one_call_decodes_a_batch_of_64_like_single_sentences(trained):
    loaded = tf.saved_model.load(str(trained["export"]))
    assert set(loaded.signatures) == {"serving_default", "beam_search"}
    rng = random.Random(5)
    sentences = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6))) for _ in range(64)]
    for name in ("serving_default", "beam_search"):
        batch = loaded.signatures[name](source=tf.constant(sentences))
        assert batch["translation"].shape == (64,)
        for index in (0, 17, 63):
            single = loaded.signatures[name](source=tf.constant(sentences[index : index + 1]))
            assert single["translation"].numpy()[0] == batch["translation"].numpy()[index]
            np.testing.assert_allclose(single["score"][0], batch["score"][index], atol=1e-4)


def test_every_signature_answers_an_empty_batch_and_has_warmup_records(trained):
    loaded = tf.saved_model.load(str(trained["export"]))
    for name in ("serving_default", "beam_search"):
        outputs = loaded.signatures[name](source=tf.constant([], tf.string))
        assert outputs["translation"].shape == (0,) and outputs["score"].shape == (0,)
    warmups = trained["export"] / "assets.extra" / "tf_serving_warmup_requests"
    signatures = [
        prediction_log_pb2.PredictionLog.FromString(
            record.numpy()
        ).predict_log.request.model_spec.signature_name
        for record in tf.data.TFRecordDataset(str(warmups))
    ]
    assert signatures == ["serving_default"] * 4 + ["beam_search"] * 4


def test_translate_command_plots_attention(trained, capsys):
    png = trained["root"] / "attention.png"
    assert (
        main(
            [
                "translate",
                "--workdir",
                str(trained["workdir"]),
                "--plot-attention",
                str(png),
                "--beam-width",
                "2",
                "alpha bravo",
                "kilo lima mike",
            ]
        )
        == 0
    )
    rows = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    assert [row["translation"] for row in rows] == ["bravo alpha", "mike lima kilo"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_translate_prints_as_predict_and_plots_the_tokens_it_produced(trained, capsys, monkeypatch):
    from apps.translation import evaluation

    plotted = []
    monkeypatch.setattr(evaluation, "plot_attention", lambda rows, output: plotted.extend(rows))
    sentences = ["alpha bravo", "kilo zulu lima mike"]  # zulu: an unknown word
    workdir = str(trained["workdir"])
    png = str(trained["root"] / "unused.png")
    assert main(["translate", "--workdir", workdir, "--plot-attention", png, *sentences]) == 0
    translated = [line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert main(["predict", "--model", workdir, *sentences]) == 0
    assert capsys.readouterr().out.splitlines() == translated
    rows = [json.loads(line) for line in translated]
    assert rows[0]["translation"] == "bravo alpha"
    for row, plot_row in zip(rows, plotted, strict=True):
        tokens = plot_row["output_tokens"]
        assert tokens[-1] == "[END]" and " ".join(tokens[:-1]) == row["translation"]
        assert plot_row["source_tokens"][0] == "[START]"
        weights = np.asarray(plot_row["weights"])
        assert weights.shape == (len(tokens), len(plot_row["source_tokens"]))
        np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-4)


def test_empty_pairs_are_skipped_and_counted(tmp_path):
    path = tmp_path / "pairs.tsv"
    rows = [f"{w} {v}\t{v} {w}" for w in WORDS for v in WORDS[:4]] + ["\tlonely", "orphan\t"]
    path.write_text("words\treversed\n" + "\n".join(rows) + "\n")
    config = APP.make_config("tiny")
    config.data.source = str(path)
    config.data.source_column, config.data.target_column = "words", "reversed"
    datasets = APP.data.load_data(config)
    assert datasets.summary["skipped_empty"] == 2
    assert datasets.summary["pairs"] == 64
    inputs, targets, weights = next(iter(datasets.train))
    assert set(inputs) == {"source", "target_in"}
    np.testing.assert_array_equal(weights.numpy(), (targets.numpy() != 0).astype("float32"))


def test_a_file_without_a_header_row_is_read_by_column_positions(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text('alpha bravo,bravo alpha\n"kilo, lima",lima kilo\n\ngolf,golf\n')
    config = APP.make_config("tiny")
    config.data.source = str(path)
    config.data.source_column, config.data.target_column = "0", "1"
    pairs = APP.data.read_pairs(config)
    assert pairs.sources == ["alpha bravo", "kilo, lima", "golf"]
    assert pairs.targets == ["bravo alpha", "lima kilo", "golf"]


@pytest.mark.large  # trains for 34 s
def test_evaluate_without_a_test_split_says_so_in_one_line(tmp_path, capsys):
    data = write_reversal_pairs(tmp_path / "reverse.tsv", 200)
    workdir = tmp_path / "run"
    settings = ("training.epochs=1", "data.test_fraction=0", *COLUMN_SETTINGS)
    assert main(command_line("train --preset tiny", *settings, workdir=workdir, data=data)) == 0
    capsys.readouterr()
    assert main(["evaluate", "--workdir", str(workdir)]) == 2
    error = capsys.readouterr().err.strip()
    assert error == (
        f"error: {workdir} has no test split (trained with data.test_fraction=0); score a file "
        "with evaluate --data FILE"
    )


@pytest.mark.parametrize(
    ("file_text", "args", "expected"),
    [
        (None, ["--data", "imaginary"], "unknown --data 'imaginary'"),
        ("words\tother\na b\tb a\n", ["--data", "FILE"], "no column 'reversed'; columns found"),
        ("words\treversed\n\t\n", ["--data", "FILE"], "no sentence pairs"),
        (None, ["--set", "model.colour=blue"], "unknown config key 'model.colour'"),
        (
            "alpha bravo charlie\tcharlie bravo alpha\nkilo lima\tlima kilo\n",
            ["--data", "FILE"],
            "The first row looks like data, not a header: 'alpha bravo charlie\\tcharlie "
            "bravo alpha'; add a header row naming the columns, or read the file by 0-based "
            "column positions (--set data.source_column=0 --set data.target_column=1)",
        ),
        (
            "words\treversed\n" + "".join(f"{' '.join(WORDS)} {n}\tx\n" for n in range(30)),
            ["--data", "FILE"],
            "all 24 training pairs were dropped as too long: the limits are "
            "model.max_source_length=16 and model.max_target_length=16 tokens ([START] and "
            "[END] included), the shortest source has 19 and the shortest target 3",
        ),
    ],
)
def test_cli_errors_are_one_line(tmp_path, capsys, file_text, args, expected):
    if file_text is not None:
        path = tmp_path / "pairs.tsv"
        path.write_text(file_text)
        args = [str(path) if arg == "FILE" else arg for arg in args]
    arguments = command_line("train --preset tiny", *COLUMN_SETTINGS, workdir=tmp_path / "run")
    code = main([*arguments, *args])
    error = capsys.readouterr().err.strip()
    assert code == 2 and expected in error and len(error.splitlines()) == 1, error


def test_every_recurrent_layer_can_use_cudnn_on_a_gpu(trained):
    _, model, _ = training.load_trained(APP, trained["workdir"])
    assert cudnn_problems(model) == {}


@pytest.mark.parametrize("signature", ["serving_default", "beam_search"])
def test_malformed_requests_are_refused_cleanly_in_one_process(
    trained, bad_requests_in_fresh_process, signature
):
    result = bad_requests_in_fresh_process(trained["export"], signature)
    assert result["outcomes"]["empty batch"] == "answered", result
    assert result["outcomes"]["source: 2 MB values"] == "answered", result  # cut to the limit
    assert set(result["good_rows"].values()) == {3}, result


def test_saved_model_cli_lists_the_documented_signatures(trained, saved_model_cli_signatures):
    assert saved_model_cli_signatures(trained["export"]) == {
        name: {
            "inputs": {"source": "DT_STRING (-1)"},
            "outputs": {"translation": "DT_STRING (-1)", "score": "DT_FLOAT (-1)"},
        }
        for name in ("serving_default", "beam_search")
    }
