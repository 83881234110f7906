"""The master key on paper: a form a person can print, keep in a safe and type back.

Byte by byte (SPEC.md section 4, "Paper key"):

    payload = 0x01 (version) || repository id (16) || encryption (32) || id (32)
              || chunker_seed (32)                                  113 bytes
    data    = payload || first 7 bytes of BLAKE3-256(payload)       120 bytes

`data` is written in base32 with Crockford's alphabet (no I, L, O, U), most significant bit
first, as 192 characters: 8 numbered lines of 24 characters in groups of 4, each line followed
by 2 check characters that bind the line's characters to its number. A line's check catches
any one character typed wrong in it (and any two neighbouring characters swapped, and a line
typed under the wrong number), so the reader is told which line to look at; the overall
checksum catches what the line checks let through.

Pure: text in, values out; no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import blake3

from snapstore.crypto.keys import MasterKey
from snapstore.errors import PaperKeyError

PAPER_KEY_VERSION = 1
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#: What a reader also accepts for a character: lower case, and the letters Crockford's
#: alphabet leaves out for the digits they look like.
_READ_AS = {"I": "1", "L": "1", "O": "0"}
_VALUE = {c: v for v, c in enumerate(ALPHABET)}
PAYLOAD_SIZE = 1 + 16 + 3 * 32
CHECKSUM_SIZE = 7
DATA_SIZE = PAYLOAD_SIZE + CHECKSUM_SIZE  # 120 bytes: 192 characters, no padding
LINES = 8
LINE_CHARS = 24
GROUP = 4
_LINE_NUMBER = re.compile(r"\s*(\d+)\s*:(.*)")


@dataclass(frozen=True)
class PaperKey:
    repository_id: bytes
    master: MasterKey

    def __repr__(self) -> str:
        return f"PaperKey(repository {self.repository_id.hex()[:8]}, <secret>)"


def _to_base32(data: bytes) -> str:
    number, bits = int.from_bytes(data, "big"), len(data) * 8
    return "".join(ALPHABET[(number >> (bits - 5 * (i + 1))) & 31] for i in range(bits // 5))


def _from_base32(values: list[int]) -> bytes:
    number = 0
    for value in values:
        number = (number << 5) | value
    return number.to_bytes(len(values) * 5 // 8, "big")


def line_check(number: int, values: list[int]) -> str:
    """The 2 check characters of line `number` (1..8): the sum of the values, and the sum
    weighted by position (1..24), each plus the line number, modulo 32."""
    plain = (number + sum(values)) % 32
    weighted = (number + sum(i * v for i, v in enumerate(values, start=1))) % 32
    return ALPHABET[plain] + ALPHABET[weighted]


def encode_paper_key(paper: PaperKey) -> str:
    """The paper key as text: a title line, then 8 numbered lines."""
    master = paper.master
    if len(paper.repository_id) != 16:
        raise ValueError("a repository id is 16 bytes")
    payload = (
        bytes([PAPER_KEY_VERSION]) + paper.repository_id
        + master.encryption + master.id_key + master.chunker_seed
    )  # fmt: skip
    text = _to_base32(payload + blake3.blake3(payload).digest()[:CHECKSUM_SIZE])
    lines = [f"snapstore paper key v{PAPER_KEY_VERSION}, repository {paper.repository_id.hex()[:8]}"]
    for number in range(1, LINES + 1):
        chars = text[(number - 1) * LINE_CHARS : number * LINE_CHARS]
        groups = " ".join(chars[i : i + GROUP] for i in range(0, LINE_CHARS, GROUP))
        lines.append(f"{number}: {groups}  {line_check(number, [_VALUE[c] for c in chars])}")
    return "\n".join(lines) + "\n"


def read_line(number: int, typed: str) -> list[int]:
    """The 24 values of line `number` as typed (spaces and hyphens ignored, any case, I and L
    read as 1, O as 0); PaperKeyError naming the line if its check characters disagree."""
    chars = [_READ_AS.get(c, c) for c in typed.upper() if c not in " \t-"]
    for position, char in enumerate(chars, start=1):
        if char not in _VALUE:
            raise PaperKeyError(f"paper key line {number}: {char!r} (character {position}) is not a paper key character", number)
    if len(chars) != LINE_CHARS + 2:
        raise PaperKeyError(
            f"paper key line {number} has {len(chars)} characters, not {LINE_CHARS + 2} (24 and 2 check "
            "characters)", number,
        )  # fmt: skip
    values = [_VALUE[c] for c in chars[:LINE_CHARS]]
    if line_check(number, values) != "".join(chars[LINE_CHARS:]):
        raise PaperKeyError(f"paper key line {number} does not match its check characters: a typo in this line", number)
    return values


def key_lines(text: str) -> dict[int, str]:
    """The numbered lines of a paper key as typed: 'N: ...' lines by their number, other
    lines by their place; blank lines and ones starting with 'snapstore' or '#' are skipped."""
    found: dict[int, str] = {}
    place = 0
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or line.lower().startswith("snapstore"):
            continue
        place += 1
        numbered = _LINE_NUMBER.fullmatch(line)
        number, body = (int(numbered[1]), numbered[2]) if numbered else (place, line)
        if not 1 <= number <= LINES:
            raise PaperKeyError(f"paper key line {number}: a paper key has lines 1 to {LINES}", None)
        if number in found:
            raise PaperKeyError(f"paper key line {number} is given twice", number)
        found[number] = body
    return found


def decode_values(values: list[int]) -> PaperKey:
    """The key from all 192 values; PaperKeyError if the overall checksum disagrees."""
    data = _from_base32(values)
    payload, checksum = data[:PAYLOAD_SIZE], data[PAYLOAD_SIZE:]
    if blake3.blake3(payload).digest()[:CHECKSUM_SIZE] != checksum:
        raise PaperKeyError(
            "every line of the paper key matches its check characters but the whole key does not match its "
            "checksum: a line from another paper key, or several typos in one line", None,
        )  # fmt: skip
    if payload[0] != PAPER_KEY_VERSION:
        raise PaperKeyError(f"paper key version {payload[0]} is not supported", None)
    keys = [payload[17 + 32 * i : 49 + 32 * i] for i in range(3)]
    return PaperKey(payload[1:17], MasterKey(keys[0], keys[1], keys[2]))


def decode_paper_key(text: str) -> PaperKey:
    """The key from the text `encode_paper_key` printed, as typed back."""
    lines = key_lines(text)
    missing = [n for n in range(1, LINES + 1) if n not in lines]
    if missing:
        raise PaperKeyError(f"line {missing[0]} of the paper key is missing", missing[0])
    values: list[int] = []
    for number in range(1, LINES + 1):
        values += read_line(number, lines[number])
    return decode_values(values)
