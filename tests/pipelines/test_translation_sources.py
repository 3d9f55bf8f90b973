import pytest

from pipelines.errors import DataError
from pipelines.sources import sentence_pairs
from pipelines.sources.sentence_pairs import parse_ding, read_sentence_pairs

DING_LINES = """\
# Version :: devel 2023-01-30
Aal {m} [cook.] | Aal blau :: eel | eel au bleu
Abbiegen {n} | Wir müssen hier links abbiegen. :: turning | We have to turn left here.
Rede {f} | Wir müssen miteinander reden!; Wie müssen uns (einmal) unterhalten! :: talk | We need to talk.
Schule {f} | Er geht (gern) zur Schule {f}. :: school | He likes going to school [Br.].
Kurz | Das ist es. :: short | That is it.
Ungleich | Das hat keine Entsprechung. | zwei :: unequal | no match
"""  # noqa: E501


def test_ding_keeps_example_sentences_without_tags(tmp_path):
    path = tmp_path / "de-en"
    path.write_text(DING_LINES, encoding="utf-8")
    pairs = parse_ding(path)
    assert pairs.sources == [
        "Wir müssen hier links abbiegen.",
        "Wir müssen miteinander reden!",
        "Er geht zur Schule.",
    ]
    assert pairs.targets == [
        "We have to turn left here.",
        "We need to talk.",
        "He likes going to school.",
    ]
    reversed_pairs = pairs.reversed()
    assert reversed_pairs.sources == pairs.targets and reversed_pairs.targets == pairs.sources


def test_ding_missing_names_the_command_to_run(tmp_path, monkeypatch):
    monkeypatch.setattr(sentence_pairs, "SYSTEM_DING_PATH", tmp_path / "missing")
    monkeypatch.setenv("RNN_SUITE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path))  # no apt-get: the download fails
    with pytest.raises(DataError, match="apt-get install -y trans-de-en"):
        sentence_pairs.load_ding_de_en()


def test_tsv_with_configurable_columns_counts_empty_pairs(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("id\tde\ten\n1\tHallo.\tHello.\n2\t\tEmpty.\n3\tJa.\t \n\n4\tNein.\tNo.\n")
    pairs = read_sentence_pairs(path, "de", "en")
    assert pairs.sources == ["Hallo.", "Nein."] and pairs.targets == ["Hello.", "No."]
    assert pairs.skipped == 2


def test_csv_default_columns_and_quoting(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text('source,target\n"Ja, gut.","Yes, fine."\n', encoding="utf-8")
    pairs = read_sentence_pairs(path)
    assert (pairs.sources, pairs.targets) == (["Ja, gut."], ["Yes, fine."])


def test_anki_layout_by_column_index(tmp_path):
    path = tmp_path / "spa.txt"
    path.write_text("Go.\tVe.\tCC-BY 2.0 (France) Attribution\nHi.\tHola.\tCC-BY\n")
    pairs = read_sentence_pairs(path)
    assert (pairs.sources, pairs.targets) == (["Go.", "Hi."], ["Ve.", "Hola."])
    spanish_first = read_sentence_pairs(path, "1", "0")
    assert spanish_first.sources == ["Ve.", "Hola."]


@pytest.mark.parametrize(
    ("name", "content", "columns", "message"),
    [
        ("pairs.tsv", "de\ten\nHallo\tHello\n", ("de", "fr"), "no column 'fr'; columns found"),
        ("pairs.tsv", "de\ten\n\t\n \t \n", ("de", "en"), "no sentence pairs"),
        ("pairs.txt", "Go.\n", ("", ""), "line 1: expected at least 2"),
        ("pairs.txt", "Go.\tVe.\n", ("en", ""), "0-based column index"),
        ("pairs.json", "{}", ("", ""), "unsupported file type"),
    ],
)
def test_bad_files_name_the_problem(tmp_path, name, content, columns, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        read_sentence_pairs(path, *columns)
