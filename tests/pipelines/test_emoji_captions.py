import sys
import types

import numpy as np
import pytest

from pipelines.errors import DataError
from pipelines.sources import emoji_captions
from pipelines.sources.emoji_captions import (
    caption_parts,
    composition_groups,
    count_parts_seen_in_training,
    emoji_caption,
    load_emoji_captions,
    render_emoji,
)

needs_font = pytest.mark.skipif(
    not emoji_captions.FONT_PATH.is_file(),
    reason=f"{emoji_captions.FONT_PATH} is not installed (apt-get install fonts-noto-color-emoji)",
)
GRINNING = "\U0001f600"
WOMAN_DETECTIVE_MEDIUM_DARK = "\U0001f575\U0001f3fe\u200d\u2640\ufe0f"


@pytest.fixture
def font():
    return emoji_captions._load_font(emoji_captions.FONT_PATH)


@pytest.mark.parametrize(
    ("name", "caption"),
    [
        (":woman_detective_medium-dark_skin_tone:", "woman detective medium-dark skin tone"),
        (":A_button_(blood_type):", "a button (blood type)"),
        (":Côte_d’Ivoire:", "côte d’ivoire"),
        (":keycap_#:", "keycap #"),
    ],
)
def test_caption_is_the_lower_cased_name_without_colons_or_underscores(name, caption):
    assert emoji_caption(name) == caption


@pytest.mark.parametrize(
    ("caption", "parts"),
    [
        (
            "woman detective medium-dark skin tone",
            ("detective", "woman", "medium-dark skin tone"),
        ),
        ("man dark skin tone red hair", ("red hair", "man", "dark skin tone")),
        (
            "kiss woman man light skin tone dark skin tone",
            ("kiss woman man", "light skin tone", "dark skin tone"),
        ),
        ("woman and man holding hands", ("woman and man holding hands",)),
        ("man", ("man",)),
        ("grinning face", ("grinning face",)),
    ],
)
def test_caption_parts(caption, parts):
    assert caption_parts(caption) == parts


def test_test_names_unseen_but_their_parts_seen():
    train = ["woman detective light skin tone", "man cook medium-dark skin tone"]
    test = ["woman detective medium-dark skin tone", "grinning face", "woman cook dark skin tone"]
    assert composition_groups(train + test) == train + test
    assert count_parts_seen_in_training(train, test) == 1
    assert count_parts_seen_in_training(train + ["thumbs up dark skin tone"], test) == 2


@needs_font
def test_render_draws_single_glyphs_over_white(font):
    image = np.asarray(render_emoji(GRINNING, font, 16))
    assert image.shape == (16, 16, 3)
    np.testing.assert_array_equal(image[0, 0], [255, 255, 255])
    assert image[8, 8, 2] < 100  # the yellow face's middle: red and green high, blue low
    assert render_emoji(WOMAN_DETECTIVE_MEDIUM_DARK, font, 16) is not None


@needs_font
@pytest.mark.parametrize(
    "text",
    [
        "\U0001f1ff\U0001f1ff",  # regional indicators Z Z: the unknown flag
        GRINNING + "\u200d" + GRINNING,  # a sequence the font does not join: two glyphs
        "\U0010fffd",  # a private-use code point: no glyph
    ],
)
def test_render_refuses_what_the_font_does_not_draw(font, text):
    assert render_emoji(text, font, 16) is None


@needs_font
def test_load_renders_fully_qualified_emoji_once(tmp_path, monkeypatch):
    monkeypatch.setenv("RNN_SUITE_CACHE", str(tmp_path))
    fake_emoji = types.SimpleNamespace(
        __version__="0.0-test",
        EMOJI_DATA={
            GRINNING: {"en": ":grinning_face:", "status": 2},
            "\u263a": {"en": ":smiling_face:", "status": 4},  # unqualified: left out
            "\U0001f1ff\U0001f1ff": {"en": ":Zed_Land:", "status": 2},
            WOMAN_DETECTIVE_MEDIUM_DARK: {
                "en": ":woman_detective_medium-dark_skin_tone:",
                "status": 2,
            },
        },
    )
    monkeypatch.setitem(sys.modules, "emoji", fake_emoji)
    data = load_emoji_captions(image_size=8)
    assert data.captions == [["grinning face"], ["woman detective medium-dark skin tone"]]
    assert data.skipped == ["zed land: not in the font"]
    assert [path.name for path in data.image_paths] == [
        "1f600.png",
        "1f575-1f3fe-200d-2640-fe0f.png",
    ]
    assert all(path.is_file() for path in data.image_paths)
    monkeypatch.setattr(emoji_captions, "render_emoji", None)  # a second render would fail
    assert load_emoji_captions(image_size=8) == data


def test_missing_font_names_the_debian_package(tmp_path):
    with pytest.raises(DataError, match="apt-get install -y fonts-noto-color-emoji"):
        load_emoji_captions(font_path=tmp_path / "NotoColorEmoji.ttf")


def test_missing_emoji_package_names_pip_install(tmp_path, monkeypatch):
    font_path = tmp_path / "font.ttf"
    font_path.write_bytes(b"")
    monkeypatch.setitem(sys.modules, "emoji", None)  # import emoji raises ImportError
    with pytest.raises(DataError, match="pip install emoji"):
        load_emoji_captions(font_path=font_path)
