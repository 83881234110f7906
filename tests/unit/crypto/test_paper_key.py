"""The paper key codec (snapstore.crypto.paper): what is printed decodes to the same key, and a
character typed wrong is caught in the line it is in."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snapstore.crypto.keys import MasterKey
from snapstore.crypto.paper import ALPHABET, PaperKey, decode_paper_key, encode_paper_key
from snapstore.errors import PaperKeyError, UsageError

PAPER = PaperKey(bytes(range(16)), MasterKey(bytes(32), bytes(range(32)), b"\xff" * 32))

keys = st.builds(
    PaperKey,
    st.binary(min_size=16, max_size=16),
    st.builds(MasterKey, *[st.binary(min_size=32, max_size=32)] * 3),
)


def key_positions(text: str) -> list[tuple[int, int]]:
    """(line index in text, column) of every character of the 8 key lines after 'N: '."""
    return [
        (row, column)
        for row, line in enumerate(text.splitlines())
        if row > 0
        for column in range(3, len(line))
        if line[column] != " "
    ]


def with_char(text: str, row: int, column: int, char: str) -> str:
    lines = text.splitlines()
    lines[row] = lines[row][:column] + char + lines[row][column + 1 :]
    return "\n".join(lines)


@given(keys)
def test_round_trip(paper: PaperKey) -> None:
    assert decode_paper_key(encode_paper_key(paper)) == paper


@settings(max_examples=300)
@given(keys, st.data())
def test_any_single_character_changed_is_caught_in_its_line(paper: PaperKey, data: st.DataObject) -> None:
    text = encode_paper_key(paper)
    row, column = data.draw(st.sampled_from(key_positions(text)))
    old = text.splitlines()[row][column]
    new = data.draw(st.sampled_from([c for c in ALPHABET if c != old]))
    with pytest.raises(PaperKeyError) as caught:
        decode_paper_key(with_char(text, row, column, new))
    assert caught.value.line == row
    assert f"paper key line {row} " in str(caught.value)


@given(keys, st.data())
def test_two_neighbours_swapped_are_caught_in_their_line(paper: PaperKey, data: st.DataObject) -> None:
    text = encode_paper_key(paper)
    row = data.draw(st.integers(1, 8))
    line = text.splitlines()[row]
    data_columns = [c for c in range(3, len(line)) if line[c] != " "][:24]
    i = data.draw(st.integers(0, 22))
    a, b = data_columns[i], data_columns[i + 1]
    if line[a] == line[b]:
        return
    swapped = with_char(with_char(text, row, a, line[b]), row, b, line[a])
    with pytest.raises(PaperKeyError) as caught:
        decode_paper_key(swapped)
    assert caught.value.line == row


def test_what_a_typist_may_do_is_read_the_same() -> None:
    text = encode_paper_key(PAPER)
    loose = "\n\n".join(
        line.lower().replace(" ", "-") if n else line for n, line in enumerate(text.splitlines())
    )
    assert decode_paper_key(loose) == PAPER
    unnumbered = "\n".join(line.split(": ", 1)[1] for line in text.splitlines()[1:])
    assert decode_paper_key(unnumbered) == PAPER
    # O for 0, I and L for 1: Crockford's alphabet has neither, so they can only mean the digit
    misread = [n + ": " + body.replace("0", "O").replace("1", "l")
               for n, body in (line.split(": ", 1) for line in text.splitlines()[1:])]  # fmt: skip
    assert decode_paper_key("\n".join(misread)) == PAPER
    assert PAPER.master.encryption.hex() not in repr(PAPER)


def test_lines_missing_misplaced_or_foreign() -> None:
    text = encode_paper_key(PAPER)
    lines = text.splitlines()
    with pytest.raises(PaperKeyError, match="line 4 of the paper key is missing") as caught:
        decode_paper_key("\n".join(lines[:4] + lines[5:]))
    assert caught.value.line == 4
    swapped = lines[:]
    swapped[2], swapped[3] = "2" + lines[3][1:], "3" + lines[2][1:]  # right numbers, wrong lines
    with pytest.raises(PaperKeyError, match="paper key line 2 does not match") as caught:
        decode_paper_key("\n".join(swapped))
    with pytest.raises(PaperKeyError, match="has 25 characters"):
        decode_paper_key(text.replace(lines[6], lines[6][:-1]))
    with pytest.raises(PaperKeyError, match="'U' .character 1. is not a paper key character"):
        decode_paper_key(text.replace("7: ", "7: U", 1))
    other = encode_paper_key(PaperKey(PAPER.repository_id, MasterKey(b"\x01" * 32, bytes(32), bytes(32))))
    mixed = lines[:3] + other.splitlines()[3:4] + lines[4:]  # line 3 of another paper key
    with pytest.raises(PaperKeyError, match="does not match its checksum") as caught:
        decode_paper_key("\n".join(mixed))
    assert caught.value.line is None
    assert isinstance(caught.value, UsageError)
