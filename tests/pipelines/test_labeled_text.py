import json
import re

import pytest

from pipelines.errors import DataError
from pipelines.sources.labeled_text import LabeledTexts, read_labeled_texts


def write(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def test_reads_csv_with_quoted_commas_and_newlines(tmp_path):
    path = write(
        tmp_path,
        "data.csv",
        'id,text,label\n1,"Great, really great",pos\n2,"Dull.\nVery dull.",neg\n3,Fine,pos\n',
    )
    data = read_labeled_texts(path)
    assert data == LabeledTexts(
        texts=["Great, really great", "Dull.\nVery dull.", "Fine"],
        labels=["pos", "neg", "pos"],
        label_names=["neg", "pos"],
        source=str(path),
        skipped=0,
    )


def test_reads_tsv_with_named_columns_and_numeric_labels(tmp_path):
    path = write(tmp_path, "data.tsv", "stars\treview\n 1 \tbad film\n5\tgood film\n10\tbest\n")
    data = read_labeled_texts(path, text_column="review", label_column="stars")
    assert data.texts == ["bad film", "good film", "best"]
    assert data.labels == ["1", "5", "10"]
    assert data.label_names == ["1", "10", "5"]


def test_reads_jsonl_keeping_numbers_as_text(tmp_path):
    lines = [{"text": "loved it", "label": 1}, {"text": "hated it", "label": 0}]
    path = write(tmp_path, "data.jsonl", "\n".join(json.dumps(line) for line in lines) + "\n\n")
    data = read_labeled_texts(path)
    assert data.texts == ["loved it", "hated it"]
    assert data.labels == ["1", "0"]
    assert data.label_names == ["0", "1"]


def test_reads_class_folders_like_keras(tmp_path):
    for label, name, text in [
        ("pos", "a.txt", "good"),
        ("pos", "b.txt", "very good"),
        ("neg", "a.txt", "bad"),
        ("neg", "ignored.md", "not a text file"),
    ]:
        (tmp_path / "reviews" / label).mkdir(parents=True, exist_ok=True)
        write(tmp_path / "reviews" / label, name, text)
    data = read_labeled_texts(tmp_path / "reviews")
    assert data.texts == ["bad", "good", "very good"]
    assert data.labels == ["neg", "pos", "pos"]
    assert data.label_names == ["neg", "pos"]


def test_skips_and_counts_rows_with_empty_text(tmp_path):
    path = write(tmp_path, "data.csv", "text,label\nfine,a\n,b\n   ,a\nok,b\n")
    data = read_labeled_texts(path)
    assert data.texts == ["fine", "ok"]
    assert data.skipped == 2


def test_invalid_utf8_and_byte_order_mark(tmp_path):
    path = write(tmp_path, "data.csv", b"\xef\xbb\xbftext,label\ncaf\xe9 noir,pos\n")
    data = read_labeled_texts(path)
    assert data.texts == ["caf\ufffd noir"]
    assert data.labels == ["pos"]


def test_known_label_names_are_kept_in_their_order(tmp_path):
    path = write(tmp_path, "data.csv", "text,label\nfine,pos\n")
    data = read_labeled_texts(path, label_names=["pos", "neg"])
    assert data.label_names == ["pos", "neg"]


def test_label_outside_known_classes_names_value_row_and_classes(tmp_path):
    path = write(tmp_path, "data.csv", "text,label\nfine,pos\nmeh,neutral\n")
    with pytest.raises(DataError) as error:
        read_labeled_texts(path, label_names=["neg", "pos"])
    assert str(error.value) == (
        f"{path} line 3: label 'neutral' is not one of the known classes: neg, pos"
    )


def test_missing_path(tmp_path):
    with pytest.raises(DataError, match=re.escape(f"no such file or folder: {tmp_path / 'x.csv'}")):
        read_labeled_texts(tmp_path / "x.csv")


def test_unsupported_extension_lists_supported_ones(tmp_path):
    path = write(tmp_path, "data.xlsx", "")
    with pytest.raises(DataError) as error:
        read_labeled_texts(path)
    message = str(error.value)
    assert "'.xlsx'" in message
    for supported in (".csv", ".tsv", ".jsonl", "folder"):
        assert supported in message


@pytest.mark.parametrize(
    ("name", "content", "missing", "found"),
    [
        ("data.csv", "review,stars\ngood,5\n", "text", "review, stars"),
        ("data.tsv", "text\tstars\ngood\t5\n", "label", "text, stars"),
        ("data.jsonl", '{"text": "good", "stars": 5}\n', "label", "text, stars"),
    ],
)
def test_missing_column_names_it_and_the_columns_found(tmp_path, name, content, missing, found):
    path = write(tmp_path, name, content)
    with pytest.raises(DataError) as error:
        read_labeled_texts(path)
    message = str(error.value)
    assert message.startswith(str(path))
    assert message.endswith(f"no column '{missing}'; columns found: {found}")


@pytest.mark.parametrize(
    ("name", "content", "line"),
    [
        ("data.csv", "text,label\ngood,pos\nbad,  \n", 3),
        ("data.tsv", "text\tlabel\ngood\tpos\nbad\n", 3),
        ("data.jsonl", '{"text": "good", "label": "pos"}\n{"text": "bad", "label": null}\n', 2),
    ],
)
def test_empty_label_names_file_and_line(tmp_path, name, content, line):
    path = write(tmp_path, name, content)
    with pytest.raises(DataError) as error:
        read_labeled_texts(path)
    assert str(error.value) == f"{path} line {line}: empty label"


def test_jsonl_line_that_is_not_an_object(tmp_path):
    path = write(tmp_path, "data.jsonl", '{"text": "a", "label": "b"}\n[1, 2]\n')
    with pytest.raises(DataError, match=re.escape(f"{path} line 2: expected a JSON object")):
        read_labeled_texts(path)


def test_jsonl_invalid_json(tmp_path):
    path = write(tmp_path, "data.jsonl", '{"text": "a", "label": "b"\n')
    with pytest.raises(DataError, match=re.escape(f"{path} line 1: not valid JSON")):
        read_labeled_texts(path)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("data.csv", ""),
        ("data.csv", "text,label\n"),
        ("data.jsonl", "\n"),
        ("data.tsv", "text\tlabel\n"),
    ],
)
def test_file_with_no_rows(tmp_path, name, content):
    path = write(tmp_path, name, content)
    with pytest.raises(DataError, match=re.escape(f"{path}: no rows")):
        read_labeled_texts(path)


def test_file_whose_rows_all_have_empty_text(tmp_path):
    path = write(tmp_path, "data.csv", "text,label\n ,a\n,b\n")
    with pytest.raises(DataError, match=re.escape(f"{path}: no rows (2 rows with empty text)")):
        read_labeled_texts(path)


def test_folder_with_fewer_than_two_classes(tmp_path):
    (tmp_path / "only").mkdir()
    write(tmp_path / "only", "a.txt", "text")
    with pytest.raises(DataError) as error:
        read_labeled_texts(tmp_path)
    assert "at least 2" in str(error.value)
    assert str(error.value).endswith("sub-folders found: only")


def test_folder_with_classes_but_no_text_files(tmp_path):
    (tmp_path / "neg").mkdir()
    (tmp_path / "pos").mkdir()
    with pytest.raises(DataError, match=re.escape(f"{tmp_path}: no rows")):
        read_labeled_texts(tmp_path)


def write_imdb_metadata(data_dir, split_names):
    """Writes imdb_reviews' metadata with these splits, so that mock_data knows the splits."""
    import tensorflow_datasets as tfds

    builder = tfds.builder("imdb_reviews", data_dir=data_dir)
    builder.info.set_splits(
        tfds.core.SplitDict(
            [tfds.core.SplitInfo(name=name, shard_lengths=[1], num_bytes=0) for name in split_names]
        )
    )
    builder.data_path.mkdir(parents=True)
    builder.info.write_to_directory(builder.data_path)


def test_reads_tfds_train_and_test_splits_offline(tmp_path):
    import tensorflow_datasets as tfds

    from pipelines.sources.labeled_text import read_tfds_labeled_texts

    write_imdb_metadata(tmp_path, ["train", "test", "unsupervised"])
    with tfds.testing.mock_data(
        num_examples=3, data_dir=str(tmp_path), policy=tfds.testing.MockPolicy.USE_FILES
    ):
        data = read_tfds_labeled_texts("imdb_reviews")
        mocked = [
            (example["text"].decode(), ["neg", "pos"][example["label"]])
            for split in ("train", "test")
            for example in tfds.as_numpy(tfds.load("imdb_reviews", split=split))
        ]
    expected = [(text, label) for text, label in mocked if text.strip()]
    assert data.source == "tfds:imdb_reviews (train+test)"
    assert data.label_names == ["neg", "pos"]
    assert list(zip(data.texts, data.labels, strict=True)) == expected
    assert data.skipped == len(mocked) - len(expected)


def test_tfds_missing_feature_lists_the_features(tmp_path):
    import tensorflow_datasets as tfds

    from pipelines.sources.labeled_text import read_tfds_labeled_texts

    write_imdb_metadata(tmp_path, ["train"])
    with (
        tfds.testing.mock_data(
            num_examples=1, data_dir=str(tmp_path), policy=tfds.testing.MockPolicy.USE_FILES
        ),
        pytest.raises(
            DataError, match=re.escape("tfds:imdb_reviews: no feature 'review'; features found: ")
        ),
    ):
        read_tfds_labeled_texts("imdb_reviews", text_key="review")


def test_tfds_unknown_name_is_a_data_error():
    from pipelines.sources.labeled_text import read_tfds_labeled_texts

    with pytest.raises(
        DataError, match=r"tfds:no_such_dataset_xyz: cannot load \(DatasetNotFoundError"
    ):
        read_tfds_labeled_texts("no_such_dataset_xyz")
