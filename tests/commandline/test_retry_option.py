"""--retry-for: one row of the remote options table gives the flag, SNAPSTORE_RETRY_FOR and the
config key `retry_for`, and the value reaches open_repository as a RetryPolicy whose warnings
go to stderr and whose interrupt is the command's."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import snapstore
from snapstore.cli.app import build_cli
from snapstore.cli.options import interrupt_on_signals


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What `snapshots` passes to open_repository (which is not really called)."""
    calls: list[dict[str, Any]] = []

    def fake_open(location: str, password: bytes, **kwargs: Any) -> Any:
        calls.append({"location": location, **kwargs})
        raise snapstore.SnapstoreError("stop here")

    monkeypatch.setattr(snapstore, "open_repository", fake_open)
    return calls


def run(tmp_path: Path, *args: str, config: Path | None = None, **env: str) -> int:
    """`snapshots` on an S3 repository, with an empty SNAPSTORE_RETRY_FOR unless given."""
    base = {"SNAPSTORE_PASSWORD": "pw", "HOME": str(tmp_path), "SNAPSTORE_RETRY_FOR": ""}
    before = ["--config", str(config)] if config else []
    result = CliRunner().invoke(
        build_cli(), [*before, "snapshots", "-r", "s3://b/p", *args], env={**base, **env}
    )
    return result.exit_code


def policy(call: dict[str, Any]) -> snapstore.RetryPolicy:
    retry = call["retry"]
    assert isinstance(retry, snapstore.RetryPolicy)
    return retry


def test_flag_environment_and_config_file(opened: list[dict[str, Any]], tmp_path: Path) -> None:
    config = tmp_path / "snapstore.toml"
    run(tmp_path, "--retry-for", "10m")
    run(tmp_path, SNAPSTORE_RETRY_FOR="1h30m")
    config.write_text('retry_for = "90s"\n')
    run(tmp_path, config=config)
    config.write_text("retry_for = 45\n")  # a bare number of seconds
    run(tmp_path, config=config)
    run(tmp_path, "--retry-for", "2m", config=config)  # the command line wins
    assert [policy(call).retry_for for call in opened] == [600.0, 5400.0, 90.0, 45.0, 120.0]


def test_default_is_the_library_default(opened: list[dict[str, Any]], tmp_path: Path) -> None:
    run(tmp_path)
    assert policy(opened[0]).retry_for == snapstore.RetryPolicy().retry_for == 300.0
    assert policy(opened[0]).warn is not None
    assert isinstance(policy(opened[0]).interrupt, snapstore.Interrupt)


def test_a_bad_duration_is_a_usage_error(opened: list[dict[str, Any]], tmp_path: Path) -> None:
    assert run(tmp_path, "--retry-for", "soon") != 0
    assert opened == []


def test_retries_are_reported_on_stderr(
    opened: list[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(tmp_path)
    warn = policy(opened[0]).warn
    assert warn is not None
    warn("s3://b/p", "load config failed (reset); retrying in 0.5 s (try 2)")
    assert capsys.readouterr().err == (
        "snapstore: warning: s3://b/p: load config failed (reset); retrying in 0.5 s (try 2)\n"
    )


def test_signals_set_the_interrupt_then_reach_the_handler_in_place() -> None:
    """Ctrl-C and SIGTERM set the flag that worker threads' waits poll, then do what they did
    before (raise in the main thread); afterwards the handlers are as they were."""
    interrupt = snapstore.Interrupt()
    before = signal.getsignal(signal.SIGTERM)
    seen: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        with interrupt_on_signals(interrupt):
            signal.raise_signal(signal.SIGTERM)
            assert interrupt.is_set() and seen == [signal.SIGTERM]
            with pytest.raises(KeyboardInterrupt):
                signal.raise_signal(signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGTERM, before)
