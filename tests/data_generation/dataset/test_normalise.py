import numpy as np

from data_generation.dataset.normalise import (
    Vocab,
    dedup_key,
    ngram_hashes,
    normalise_whitespace,
    phrase,
    words,
)


def test_normalise_keeps_code_indentation():
    text = "\n\r\ndef f():\r\n    return 1   \r\n\u200b\n\n"
    assert normalise_whitespace(text) == "def f():\n    return 1"
    assert normalise_whitespace("  x = 1\n") == "  x = 1"  # leading indentation of line 1 is code


def test_dedup_key_folds_case_and_whitespace_but_keeps_fields_apart():
    assert dedup_key("Sum  a\nlist", "", "x") == dedup_key("sum a list ", "", "x")
    assert dedup_key("a b", "", "c") != dedup_key("a", "b", "c")


def test_words_and_phrase():
    assert words("Find the Max_Value of x2, y!") == ["find", "the", "max_value", "of", "x2", "y"]
    assert phrase("Write a function: sum(a, b).") == " write a function sum a b "


def test_ngram_hashes_never_cross_documents():
    vocab = Vocab()
    docs = [vocab.encode("a b c"), vocab.encode("a b"), vocab.encode("b c d e")]
    ids = np.concatenate(docs)
    offsets = np.array([0, 3, 5, 9])
    hashes, starts = ngram_hashes(ids, offsets, 3)
    assert starts.tolist() == [0, 5, 6]  # "a b c", "b c d", "c d e"
    alone, _ = ngram_hashes(docs[0], np.array([0, 3]), 3)
    assert hashes[0] == alone[0]  # a window's hash does not depend on its neighbours
    assert len(set(hashes.tolist())) == 3
