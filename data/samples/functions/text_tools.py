"""Small text and number helpers (codecapy's bundled reverse-instruction sample)."""


def count_words(text):
    """Return how many whitespace-separated words `text` contains."""
    words = text.split()
    return len(words)


def clamp(value, low, high):
    """Limit `value` to the closed range [low, high]; raise ValueError if low > high."""
    if low > high:
        raise ValueError("low must not be greater than high")
    return max(low, min(value, high))


def initials(full_name):
    """Return the upper-case initials of a name, e.g. "ada lovelace" -> "AL"."""
    parts = full_name.split()
    return "".join(part[0].upper() for part in parts)


def percent_change(old, new):
    """Return the change from `old` to `new` in percent; raise ValueError when `old` is zero."""
    if old == 0:
        raise ValueError("old must not be zero")
    return (new - old) / old * 100


def strip_comment(line, marker="#"):
    """Remove everything from the first `marker` on, and trailing whitespace, from one line."""
    index = line.find(marker)
    if index >= 0:
        line = line[:index]
    return line.rstrip()


def word_lengths(sentence):
    """Map each distinct word of a sentence (lower-cased) to its length."""
    result = {}
    for word in sentence.lower().split():
        result[word] = len(word)
    return result
