import json

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from pipelines.errors import DataError
from pipelines.sources import resolve
from pipelines.sources.image_captions import read_image_captions, read_tfds_image_captions

TINY_PNG = tf.io.encode_png(tf.zeros((1, 1, 3), tf.uint8)).numpy()
TINY_JPEG = tf.io.encode_jpeg(tf.zeros((2, 2, 3), tf.uint8)).numpy()


def write_images(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(TINY_JPEG if name.endswith(".jpg") else TINY_PNG)


def test_flickr8k_layout_skips_missing_unreadable_and_uncaptioned_images(tmp_path):
    write_images(tmp_path, ["a.png", "b.jpg", "c.png"])
    (tmp_path / "notes.jpg").write_text("not an image")
    (tmp_path / "captions.txt").write_text(
        "a.png#0\tA dog runs .\n"
        "b.jpg#0\tA cat sleeps .\n"
        "missing.jpg#0\tNobody .\n"
        "a.png#1\t A dog plays . \n"
        "\n"
        "notes.jpg#0\tText .\n"
        "c.png#0\t \n"
        "b.jpg\tNo number .\n"
    )
    data = read_image_captions(tmp_path)
    assert data.image_paths == [tmp_path / "a.png", tmp_path / "b.jpg"]
    assert data.captions == [["A dog runs .", "A dog plays ."], ["A cat sleeps .", "No number ."]]
    assert data.skipped == [
        "missing.jpg: missing",
        "notes.jpg: not a JPEG, PNG, GIF, BMP or WebP file",
        "c.png: no caption left",
    ]
    assert data.empty_captions == 1
    assert data.source == str(tmp_path / "captions.txt")
    image_bytes, captions = next(data.to_dataset().as_numpy_iterator())
    assert image_bytes == TINY_PNG and list(captions) == [b"A dog runs .", b"A dog plays ."]


def test_coco_json_with_a_separate_image_folder(tmp_path):
    write_images(tmp_path / "train2017", ["000001.jpg", "000002.jpg"])
    document = {
        "images": [
            {"id": 1, "file_name": "000001.jpg"},
            {"id": 2, "file_name": "000002.jpg"},
            {"id": 3, "file_name": "000003.jpg"},
        ],
        "annotations": [
            {"image_id": 2, "caption": "Two birds."},
            {"image_id": 1, "caption": "One bird."},
            {"image_id": 2, "caption": ""},
            {"image_id": 9, "caption": "Lost."},
            {"image_id": 3, "caption": "Gone."},
            {"image_id": 2, "caption": "Birds on a wire."},
        ],
    }
    captions_file = tmp_path / "annotations" / "captions_train2017.json"
    captions_file.parent.mkdir()
    captions_file.write_text(json.dumps(document))
    data = read_image_captions(captions_file, images_dir=tmp_path / "train2017")
    assert [path.name for path in data.image_paths] == ["000002.jpg", "000001.jpg"]
    assert data.captions == [["Two birds.", "Birds on a wire."], ["One bird."]]
    assert data.skipped == ["image_id 9: annotated but not in `images`", "000003.jpg: missing"]
    assert data.empty_captions == 1


def test_kaggle_csv_keeps_commas_in_captions(tmp_path):
    write_images(tmp_path, ["a.jpg"])
    (tmp_path / "captions.txt").write_text(
        'image,caption\na.jpg,A man, a dog .\na.jpg,"Quoted, too ."\n'
    )
    data = read_image_captions(tmp_path)
    assert data.captions == [["A man, a dog .", "Quoted, too ."]]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "no captions file. Expected one named captions.txt.*Flickr8k.*COCO captions JSON"),
        ({"captions.txt": "", "captions.json": "{}"}, "several captions files"),
        ({"captions.txt": "a.png#0 no tab\n"}, "line 1: expected image.jpg#0<TAB>caption"),
        ({"captions.json": "{"}, "not a JSON document"),
        ({"captions.json": '{"images": []}'}, "expected COCO captions JSON.*'annotations'"),
        ({"captions.txt": "gone.png#0\tA caption.\n"}, "no captioned image found .gone.png: m"),
    ],
)
def test_bad_folders_name_the_problem(tmp_path, files, message):
    write_images(tmp_path, ["a.png"])
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(DataError, match=message):
        read_image_captions(tmp_path)


def test_tfds_coco_captions_keeps_images_encoded(monkeypatch):
    # The mocked dataset is not prepared on disk, so loading it checks the network first.
    monkeypatch.setattr(resolve, "network_problem", lambda: "")

    def as_dataset(builder, *args, **kwargs):
        assert kwargs["decoders"]["image"].__class__.__name__ == "SkipDecoding"
        return tf.data.Dataset.from_tensors(
            {
                "image": tf.constant(TINY_PNG),
                "image/id": tf.constant(7, tf.int64),
                "captions": {"id": tf.constant([1, 2], tf.int64), "text": ["A b.", "C d."]},
            }
        )

    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        dataset = read_tfds_image_captions("coco_captions", split="val")
        ((image_bytes, captions),) = list(dataset.as_numpy_iterator())
    assert image_bytes == TINY_PNG
    np.testing.assert_array_equal(captions, [b"A b.", b"C d."])


def test_tfds_unknown_name_is_a_data_error():
    with pytest.raises(DataError, match="tfds:no_such_dataset_here: cannot load split 'train'"):
        read_tfds_image_captions("no_such_dataset_here")
