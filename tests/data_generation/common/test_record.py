import pytest

from data_generation.common.record import Record, RowError, content_id, record_from_row


def test_id_is_stable_content_hash_and_framed():
    a = Record("Add two numbers", "", "def add(a, b):\n    return a + b", "x")
    b = Record("Add two numbers", "", "def add(a, b):\n    return a + b", "other-source", "python", {"k": 1})
    assert a.id == b.id == content_id(a.instruction, a.input, a.output)
    assert len(a.id) == 16 and int(a.id, 16) >= 0
    # Concatenation boundaries matter: ("ab", "c") must not collide with ("a", "bc").
    assert content_id("ab", "c", "d") != content_id("a", "bc", "d")


def test_id_cannot_be_forged_and_replace_recomputes():
    rec = Record("i", "", "o", "s", id="forged")
    assert rec.id == content_id("i", "", "o")
    changed = rec.replace(output="o2")
    assert changed.id == content_id("i", "", "o2") and changed.source == "s"


def test_alpaca_and_full_forms():
    rec = Record("i", "x", "o", "codealpaca", "python", {"row": 3})
    assert rec.to_alpaca() == {"instruction": "i", "input": "x", "output": "o"}
    assert list(rec.to_dict()) == ["instruction", "input", "output", "source", "id", "language", "meta"]


@pytest.mark.parametrize(
    "row, reason",
    [
        ([1, 2], "not_an_object"),
        ({"input": "", "output": "o"}, "missing_instruction"),
        ({"instruction": "  ", "output": "o"}, "empty_instruction"),
        ({"instruction": "i", "output": ""}, "empty_output"),
        ({"instruction": "i"}, "missing_output"),
        ({"instruction": 5, "output": "o"}, "bad_type_instruction"),
        ({"instruction": "i", "input": ["x"], "output": "o"}, "bad_type_input"),
        ({"instruction": "i", "output": "o", "meta": "{not json"}, "bad_meta"),
        ({"instruction": "i", "output": "o", "meta": [1]}, "bad_type_meta"),
    ],
)
def test_bad_rows_have_reasons(row, reason):
    with pytest.raises(RowError) as err:
        record_from_row(row, default_source="s")
    assert err.value.reason == reason


def test_good_rows_fill_defaults_and_parse_meta_strings():
    rec = record_from_row({"instruction": "i", "output": "o", "meta": '{"a": 1}'}, default_source="src")
    assert (rec.input, rec.source, rec.language, rec.meta) == ("", "src", "unknown", {"a": 1})
    full = record_from_row(
        {"instruction": "i", "input": None, "output": "o", "source": "cc", "language": "cpp"}, default_source="src"
    )
    assert (full.source, full.language, full.input) == ("cc", "cpp", "")
