"""CommandStream: the command's exit status, not the consumer, decides success."""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest

from snapstore.errors import DumpFailed, SourceError
from snapstore.sources.command import STDERR_TAIL_BYTES, CommandStream, run_command

PY = sys.executable


def python(code: str) -> list[str]:
    return [PY, "-c", code]


def read_all(stream: CommandStream, chunk: int = 1 << 16) -> int:
    total = 0
    with stream as out:
        while data := out.read(chunk):
            total += len(data)
    return total


def test_large_output_streams_through_and_exit_zero_succeeds() -> None:
    # 64 MiB through a 64 KiB read loop: nothing is held in memory on our side.
    code = (
        "import sys\nblock = b'x' * (1 << 20)\nfor _ in range(64): sys.stdout.buffer.write(block)"
    )
    assert read_all(CommandStream(python(code))) == 64 << 20


def test_non_zero_exit_raises_dump_failed_with_stderr_tail() -> None:
    code = "import sys\nsys.stdout.write('partial')\nsys.stderr.write('boom: disk on fire\\n')\nsys.exit(3)"
    with pytest.raises(DumpFailed) as caught:
        read_all(CommandStream(python(code), name="fake_dump"))
    assert caught.value.returncode == 3
    assert caught.value.command == "fake_dump"
    assert "boom: disk on fire" in caught.value.stderr_tail
    assert str(caught.value) == "fake_dump exited 3: boom: disk on fire"


def test_stderr_keeps_only_the_tail() -> None:
    code = (
        "import sys\n"
        "for i in range(20000): sys.stderr.write(f'line {i:06d} ' + 'e' * 40 + '\\n')\n"
        "sys.exit(1)"
    )
    with pytest.raises(DumpFailed) as caught:
        read_all(CommandStream(python(code)))
    tail = caught.value.stderr_tail
    assert len(tail.encode()) <= STDERR_TAIL_BYTES
    assert tail.rstrip().endswith("line 019999 " + "e" * 40)
    assert "line 000000" not in tail


def test_killed_by_signal_raises_dump_failed() -> None:
    code = "import os, signal, sys\nsys.stdout.write('abc')\nsys.stdout.flush()\nos.kill(os.getpid(), signal.SIGKILL)"
    with pytest.raises(DumpFailed) as caught:
        read_all(CommandStream(python(code)))
    assert caught.value.returncode == -signal.SIGKILL
    assert "was killed" in str(caught.value)


def test_consumer_exception_kills_the_child_and_propagates() -> None:
    code = (
        "import os, sys\nprint(os.getpid(), flush=True)\nwhile True: sys.stdout.write('y' * 4096)"
    )
    stream = CommandStream(python(code))
    with pytest.raises(KeyError), stream as out:
        pid = int(out.readline())
        out.read(100_000)
        raise KeyError("archiver gave up")
    # The child was killed and reaped: its pid no longer exists.
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_leaving_early_without_exception_is_an_error_not_a_backup() -> None:
    code = "import sys\nwhile True: sys.stdout.write('y' * 4096)"
    started = time.monotonic()
    with (
        pytest.raises(SourceError, match="not read to the end"),
        CommandStream(python(code)) as out,
    ):
        out.read(10)
    assert time.monotonic() - started < 30


def test_missing_program_is_a_dump_failure() -> None:
    with pytest.raises(DumpFailed) as caught:
        read_all(CommandStream(["/nonexistent/pg_dump"]))
    assert caught.value.returncode == 127
    assert caught.value.command == "pg_dump"


def test_a_stream_is_read_once() -> None:
    stream = CommandStream(python("print('x')"))
    read_all(stream)
    with pytest.raises(SourceError):
        read_all(stream)


def test_extra_env_reaches_the_child_only() -> None:
    code = "import os\nprint(os.environ.get('PGPASSWORD'), os.environ.get('ONLY_BASE'))"
    with CommandStream(
        python(code), env={"ONLY_BASE": "b"}, extra_env={"PGPASSWORD": "s3cret"}
    ) as out:
        assert out.read().split() == [b"s3cret", b"b"]
    assert "PGPASSWORD" not in os.environ


def test_run_command_returns_stdout_or_raises() -> None:
    assert run_command(python("print('15.4')")) == b"15.4\n"
    with pytest.raises(DumpFailed, match="nope"):
        run_command(python("import sys\nsys.exit('nope')"), name="psql")
