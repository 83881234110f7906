"""Turn a repository location (a path or a URL) into a ready backend stack.

    /srv/backup, ./repo, file:///srv/backup   -> LocalBackend
    s3://bucket/prefix                        -> RetryBackend(FsspecBackend(s3fs))
    sftp://user@host[:port]/path              -> RetryBackend(PooledBackend(FsspecBackend(sftp)))
    gs://..., any other fsspec URL            -> RetryBackend(FsspecBackend(fsspec))

Options arrive explicitly from the caller (the CLI reads the environment, not the library).
`retry` says how long remote backends retry, whom they tell, and what interrupts them
(see `retry.py`).
For s3 and sftp they are the rows of `snapstore.storage_options` (s3: endpoint_url, region,
profile, addressing_style, storage_class for packs only; and key, secret, token from code;
sftp: key_filename and known_hosts, see `sftp.py`: unknown host keys are refused). For other fsspec
protocols they are passed to the filesystem as storage options. `connections` bounds the
connections a remote backend opens (S3's connection pool, SFTP's sessions). `memory:` is
refused: an in-memory repository only makes sense in code.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from snapstore.backend.base import Backend, FileType
from snapstore.backend.local import LocalBackend
from snapstore.backend.retry import RetryBackend, RetryPolicy
from snapstore.errors import UsageError
from snapstore.storage_options import accepted_options, choices

S3_OPTIONS = accepted_options("s3")
SFTP_OPTIONS = accepted_options("sftp")
DEFAULT_CONNECTIONS = 5
"""Connections a remote backend opens at most unless told otherwise."""


def default_connections(url_or_path: str) -> int:
    """Reads and uploads at once unless told otherwise: DEFAULT_CONNECTIONS for a remote
    backend, whose round trips they hide; the cores for a local one, where a read waits for
    nothing and threads beyond the cores only pass the GIL to one another (a dump of a
    month's delta chains: 1.5-1.7 s with 2 threads against 1.75-2.0 s with 5, on 2 cores)."""
    if is_local(url_or_path):
        return max(2, os.cpu_count() or 2)
    return DEFAULT_CONNECTIONS


_ADDRESSING_STYLES = frozenset(choices("s3", "addressing_style"))


def open_backend(
    url_or_path: str,
    *,
    options: Mapping[str, str] | None = None,
    connections: int | None = None,
    retry: RetryPolicy | None = None,
) -> Backend:
    """The backend for a location; remote ones come wrapped in retries. Nothing is created."""
    options = dict(options or {})
    retry = retry or RetryPolicy()
    connections = DEFAULT_CONNECTIONS if connections is None else connections
    if connections < 1:
        raise UsageError("connections must be at least 1")
    if "::" in url_or_path:
        raise UsageError(f"chained fsspec URLs are not supported: {_redact(url_or_path)}")
    scheme = _scheme(url_or_path)
    if scheme is None:
        _no_options(url_or_path, options)
        return LocalBackend(url_or_path)
    if scheme == "memory":
        raise UsageError("memory backends cannot be opened from a URL; build MemoryBackend()")
    if scheme == "file":
        _no_options(url_or_path, options)
        return LocalBackend(_file_url_path(url_or_path))
    if scheme in ("s3", "s3a"):
        return RetryBackend.with_policy(_s3_backend(url_or_path, options, connections), retry)
    if scheme in ("sftp", "ssh"):
        return RetryBackend.with_policy(_sftp_backend(url_or_path, options, connections), retry)
    from fsspec.registry import known_implementations, registry  # remote only: startup stays quick

    if scheme not in known_implementations and scheme not in registry:
        raise UsageError(f"unknown storage scheme {scheme!r} in {_redact(url_or_path)}")
    return RetryBackend.with_policy(_fsspec_backend(url_or_path, options), retry)


def is_local(url_or_path: str) -> bool:
    """Whether a location is a local path (or file URL): it needs no cache in front of it."""
    return _scheme(url_or_path) in (None, "file")


def _scheme(url_or_path: str) -> str | None:
    """The URL scheme, or None for a plain path (including Windows drive letters)."""
    if url_or_path.startswith("memory:"):
        return "memory"
    head, sep, _ = url_or_path.partition("://")
    if not sep or not head.replace("+", "").replace("-", "").replace(".", "").isalnum():
        return None
    return head.lower()


def _no_options(location: str, options: Mapping[str, str]) -> None:
    if options:
        raise UsageError(f"{location} is a local path and takes no options: {sorted(options)}")


def _file_url_path(url: str) -> str:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise UsageError(f"file URLs name a local path, not a host: {url}")
    path = unquote(parts.path)
    if not path:
        raise UsageError(f"no path in {url}")
    return path


def _remote(fs: Any, root: str, **kwargs: Any) -> Backend:
    """Wraps a remote filesystem. The adapter (and with it botocore and aiohttp, half a second
    of imports) is loaded only here, so commands on local repositories start fast."""
    from snapstore.backend.fsspec import FsspecBackend

    return FsspecBackend(fs, root, **kwargs)


def _s3_backend(url: str, options: Mapping[str, str], connections: int) -> Backend:
    unknown = set(options) - S3_OPTIONS
    if unknown:
        raise UsageError(f"unknown s3 options {sorted(unknown)}; known: {sorted(S3_OPTIONS)}")
    parts = urlsplit(url)
    if not parts.netloc:
        raise UsageError(f"no bucket in {url}")
    root = f"{parts.netloc}{parts.path}".rstrip("/")
    kwargs: dict[str, Any] = {
        "skip_instance_cache": True,
        "use_listings_cache": False,
    }
    for name in ("key", "secret", "token", "endpoint_url"):
        if options.get(name):
            kwargs[name] = options[name]
    kwargs["session"] = _s3_session(options.get("profile") or None)
    if options.get("region"):
        kwargs["client_kwargs"] = {"region_name": options["region"]}
    config: dict[str, Any] = {
        "max_pool_connections": connections,
        "response_checksum_validation": "when_required",  # see _s3_session
        # RetryBackend owns the waiting: botocore's own back-off (up to ~15 s a request) is
        # silent and cannot be interrupted
        "retries": {"mode": "standard", "total_max_attempts": 1},
    }
    style = options.get("addressing_style")
    if style:
        if style not in _ADDRESSING_STYLES:
            raise UsageError(f"addressing_style must be one of {sorted(_ADDRESSING_STYLES)}")
        config["s3"] = {"addressing_style": style}
    kwargs["config_kwargs"] = config
    put_options: dict[FileType, dict[str, Any]] = {}
    if options.get("storage_class"):
        put_options[FileType.PACK] = {"StorageClass": options["storage_class"]}
    import fsspec  # remote only: local commands start without it

    fs = fsspec.filesystem("s3", **kwargs)
    fs.retries = 1  # nor does s3fs retry on its own
    fs.max_concurrency = 1  # one GET per object: no HEAD first to split a large one up
    return _remote(fs, root, atomic_put=True, location=f"s3://{root}", put_options=put_options)


def _s3_session(profile: str | None) -> Any:
    """An aiobotocore session that has botocore check the checksum of whole-object GETs only.

    By default botocore asks for a checksum on every GET and checks the body against the
    x-amz-checksum-* header that comes back. Some S3 work-alikes send the whole object's
    checksum with a ranged GET, which can never match the range, so every ranged read failed
    (FlexibleChecksumError). With validation "when_required" botocore checks only the GETs
    that ask (ChecksumMode), and the handler below asks on whole-object GETs. Ranged reads are
    blobs in a pack, each authenticated by the repository's AEAD anyway.
    """
    from aiobotocore.session import AioSession

    session = AioSession(profile=profile)
    session.register("before-parameter-build.s3.GetObject", _checksum_whole_objects)
    return session


def _checksum_whole_objects(params: dict[str, Any], **kwargs: Any) -> None:
    if "Range" not in params:
        params.setdefault("ChecksumMode", "ENABLED")


def _sftp_backend(url: str, options: Mapping[str, str], connections: int) -> Backend:
    """Loads paramiko only here, like `_remote` loads botocore."""
    unknown = set(options) - SFTP_OPTIONS
    if unknown:
        raise UsageError(f"unknown sftp options {sorted(unknown)}; known: {sorted(SFTP_OPTIONS)}")
    try:
        from snapstore.backend.sftp import sftp_backend
    except ImportError as exc:
        raise UsageError(f"sftp needs paramiko, which is not installed: {exc}") from exc
    return sftp_backend(
        url,
        location=_redact(url),
        key_filename=options.get("key_filename"),
        known_hosts=options.get("known_hosts"),
        connections=connections,
    )


def _fsspec_backend(url: str, options: Mapping[str, str]) -> Backend:
    import fsspec.core

    try:
        fs, root = fsspec.core.url_to_fs(url, skip_instance_cache=True, **options)
    except (ImportError, TypeError, ValueError) as exc:
        raise UsageError(f"cannot open {_redact(url)}: {exc}") from exc
    return _remote(fs, root, location=_redact(url))


def _redact(url: str) -> str:
    """The URL without a password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))
