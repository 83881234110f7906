"""Fuzzing the repository config codec: any plaintext of `config` decodes to settings a
writer can use, or raises a clean error."""

from __future__ import annotations

from hypothesis import example, given

from snapstore.errors import IntegrityError, UnsupportedVersion
from snapstore.repository.config import RepositoryConfig
from tests.fuzz.fuzzing import decoded, documents, fuzz, hostile, with_field
from tests.fuzz.seeds import CONFIGS
from tests.fuzz.wellformed import check_config

CONFIG_ERRORS = (IntegrityError, UnsupportedVersion)


CONFIG = CONFIGS[0]


def test_config_decoder(fuzz_cases: int) -> None:
    @given(hostile(CONFIGS, documents(CONFIGS)))
    # Found by this test: a feature that is not a string raised TypeError (naming the unknown
    # ones), int() of an infinite pack size OverflowError; fields of the wrong type were
    # accepted, for the next reader or writer to fail on.
    @example(with_field(CONFIG, ["features"], [None, "x"]))
    @example(with_field(CONFIG, ["features"], [7]))
    @example(with_field(CONFIG, ["pack_size"], float("inf")))
    @example(with_field(CONFIG, ["id"], "not bytes"))
    @example(with_field(CONFIG, ["chunker", "files"], [1, 2.5, 4, 0]))
    def case(plaintext: bytes) -> None:
        config = decoded(RepositoryConfig.decode, plaintext, allowed=CONFIG_ERRORS)
        if config is not None:
            check_config(config)

    fuzz(fuzz_cases, case)
