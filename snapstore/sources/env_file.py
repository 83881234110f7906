"""Read a Mastodon `.env.production`: the dotenv dialect Mastodon's own loader accepts.

Supported, line by line:

    # a comment                       ignored, as are blank lines
    KEY=value                         value stripped of surrounding blanks
    export KEY=value                  the `export ` prefix is dropped
    KEY=value # comment               an unquoted value ends at " #"
    KEY='literal $value'              single quotes: taken as is
    KEY="line\\nbreak \\"quoted\\""   double quotes: \\n \\r \\t \\" \\\\ are unescaped
    KEY="spans
    several lines"                    a quoted value may span lines

Not supported, on purpose: `${VAR}` interpolation and command substitution (Mastodon's
generated files never use them; a value containing them is kept literally). A line that is
not an assignment raises `SourceError` naming the line number, never the value, which may
be a secret.
"""

from __future__ import annotations

import re
from pathlib import Path

from snapstore.errors import SourceError

_ASSIGNMENT = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(.*)", re.DOTALL)
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\", "$": "$"}


def parse_env(text: str, where: str = "env file") -> dict[str, str]:
    """KEY -> value for every assignment in `text`; a later assignment wins."""
    values: dict[str, str] = {}
    lines = text.splitlines()
    number = 0
    while number < len(lines):
        line = lines[number]
        number += 1
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _ASSIGNMENT.fullmatch(line)
        if match is None:
            raise SourceError(f"{where}, line {number}: not a KEY=VALUE assignment")
        key, raw = match.group(1), match.group(2)
        if raw[:1] in ("'", '"'):
            quote = raw[0]
            body = raw[1:]
            start = number
            while _closing_quote(body, quote) < 0:
                if number >= len(lines):
                    raise SourceError(f"{where}, line {start}: unterminated {quote} quote")
                body += "\n" + lines[number]
                number += 1
            end = _closing_quote(body, quote)
            rest = body[end + 1 :].strip()
            if rest and not rest.startswith("#"):
                raise SourceError(f"{where}, line {number}: text after the closing quote")
            body = body[:end]
            values[key] = _unescape(body) if quote == '"' else body
        else:
            values[key] = re.split(r"\s+#", raw, maxsplit=1)[0].strip()
    return values


def _closing_quote(body: str, quote: str) -> int:
    """Index of the unescaped closing quote in `body`, or -1."""
    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\" and quote == '"':
            index += 2
            continue
        if char == quote:
            return index
        index += 1
    return -1


def _unescape(body: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), body)


def read_env_file(path: str | Path) -> dict[str, str]:
    """Parse the file at `path`; an unreadable file raises `SourceError`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise SourceError(f"{path} is not UTF-8 text") from exc
    return parse_env(text, str(path))


def is_true(value: str | None) -> bool:
    """Mastodon's own test for S3_ENABLED and friends: exactly "true", nothing else.

    Matching Mastodon matters: reading "yes" as true would skip media that Mastodon in fact
    stores on local disk.
    """
    return value == "true"
