"""Where reports are written: an S3-compatible bucket (aiobotocore) or a local folder, one `Bucket` port.

`settings.reports_url` chooses: `s3://bucket/prefix` goes to S3 (endpoint from `settings.s3_endpoint_url`,
credentials from the standard AWS environment variables), anything else is a folder. Callers name objects
relative to the prefix (`daily/2026-11-27/status.json`); `put` and `list` answer with object keys, the names
in the storage itself (`prefix/daily/2026-11-27/status.json`), and `location/object_key` addresses an object.

Errors: `BucketError` wraps whatever the storage raised (S3 client errors, connection failures, OS errors);
`ObjectNotFound`, one of them, says a read found no object under the prefix.
"""

import asyncio
import errno
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import BinaryIO
from urllib.parse import urlsplit

from aiobotocore.session import get_session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from services.reporter.ports import Bucket, BucketError, ObjectNotFound
from shared.settings import Settings

_S3_CONFIG = Config(
    signature_version="s3v4",
    s3={"addressing_style": "path"},  # MinIO and moto serve buckets by path, not virtual host
    connect_timeout=10,
    read_timeout=30,
    retries={"max_attempts": 3, "mode": "standard"},
)


def _checked_key(key: str) -> str:
    parts = PurePosixPath(key).parts
    if not key or key.startswith("/") or any(p in ("..", ".") for p in parts) or "\\" in key or "\x00" in key:
        raise BucketError(f"invalid object key {key!r}")
    return key


def _readable_key(key: str) -> str:
    """`key` if it can name an object; a key that cannot (empty, absolute, climbing out) finds none."""
    try:
        return _checked_key(key)
    except BucketError as exc:
        raise ObjectNotFound(str(exc)) from exc


class LocalFolderBucket:
    """Reports as files under a folder; each write is atomic (a temporary file renamed into place)."""

    def __init__(self, root: Path) -> None:
        self._root = root.resolve()

    @property
    def location(self) -> str:
        """The folder's absolute path."""
        return str(self._root)

    async def put(self, key: str, data: bytes, content_type: str) -> str:
        """Write the file, creating folders as needed; the object key is its path relative to the folder."""
        return await self._write(key, lambda out: out.write(data))

    async def put_file(self, key: str, source: Path, content_type: str) -> str:
        """`put` with the file `source`'s bytes, copied a block at a time."""
        return await self._write(key, lambda out: _copy_from(source, out))

    async def _write(self, key: str, write: Callable[[BinaryIO], object]) -> str:
        path = self._root / _checked_key(key)
        try:
            await asyncio.to_thread(_write_atomically, path, write)
        except OSError as exc:
            raise BucketError(f"cannot write {path}: {exc}") from exc
        return key

    async def list(self, prefix: str = "") -> list[str]:
        """Relative paths of the files whose key starts with `prefix`."""
        try:
            return await asyncio.to_thread(_list_files, self._root, prefix)
        except OSError as exc:
            raise BucketError(f"cannot list {self._root}: {exc}") from exc

    async def get(self, key: str) -> bytes:
        """The file's bytes; `ObjectNotFound` if there is no such file inside the folder."""
        path = self._root / _readable_key(key)
        try:
            return await asyncio.to_thread(_read_inside, self._root, path)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise ObjectNotFound(f"no object {key!r} in {self._root}") from exc
        except OSError as exc:
            # A name longer than the file system allows names no file: that is a key, not the folder, at fault.
            if exc.errno == errno.ENAMETOOLONG:
                raise ObjectNotFound(f"no object {key!r} in {self._root}") from exc
            raise BucketError(f"cannot read {path}: {exc}") from exc


def _read_inside(root: Path, path: Path) -> bytes:
    # A symbolic link may point outside the folder: only what resolves inside it is served.
    resolved = path.resolve()
    if not resolved.is_relative_to(root):
        raise FileNotFoundError(path)
    return resolved.read_bytes()


def _list_files(root: Path, prefix: str) -> list[str]:
    if not root.exists():
        return []
    keys = (p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    return sorted(k for k in keys if k.startswith(prefix) and not k.endswith(".tmp"))


def _copy_from(source: Path, out: BinaryIO) -> None:
    with source.open("rb") as data:
        shutil.copyfileobj(data, out)


def _write_atomically(path: Path, write: Callable[[BinaryIO], object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique temporary name, so concurrent writers of the same key never rename each other's file.
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as tmp_file:
            write(tmp_file)
        tmp.chmod(0o644)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class S3Bucket:
    """Reports as objects in an S3-compatible bucket; one short-lived client per call (reports are rare)."""

    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None) -> None:
        self._bucket = bucket
        self._prefix = prefix.strip("/")
        self._endpoint_url = endpoint_url
        self._session = get_session()

    @property
    def location(self) -> str:
        """`s3://bucket`."""
        return f"s3://{self._bucket}"

    def _object_key(self, key: str) -> str:
        return f"{self._prefix}/{key}" if self._prefix else key

    async def put(self, key: str, data: bytes, content_type: str) -> str:
        """PUT the object as `prefix/key`; returns that object key."""
        object_key = self._object_key(_checked_key(key))
        try:
            async with self._session.create_client("s3", endpoint_url=self._endpoint_url, config=_S3_CONFIG) as s3:
                await s3.put_object(Bucket=self._bucket, Key=object_key, Body=data, ContentType=content_type)
        except (BotoCoreError, ClientError, OSError) as exc:
            raise BucketError(f"cannot put s3://{self._bucket}/{object_key}: {exc}") from exc
        return object_key

    async def put_file(self, key: str, source: Path, content_type: str) -> str:
        """PUT the file `source` as `prefix/key`, its body read from disk as it is sent; returns that object key."""
        object_key = self._object_key(_checked_key(key))
        try:
            async with self._session.create_client("s3", endpoint_url=self._endpoint_url, config=_S3_CONFIG) as s3:
                with source.open("rb") as body:
                    await s3.put_object(Bucket=self._bucket, Key=object_key, Body=body, ContentType=content_type)
        except (BotoCoreError, ClientError, OSError) as exc:
            raise BucketError(f"cannot put s3://{self._bucket}/{object_key}: {exc}") from exc
        return object_key

    async def list(self, prefix: str = "") -> list[str]:
        """Object keys (prefix included) of the objects under `prefix/...`."""
        full_prefix = self._object_key(prefix)
        keys: list[str] = []
        try:
            async with self._session.create_client("s3", endpoint_url=self._endpoint_url, config=_S3_CONFIG) as s3:
                paginator = s3.get_paginator("list_objects_v2")
                async for page in paginator.paginate(Bucket=self._bucket, Prefix=full_prefix):
                    keys.extend(item["Key"] for item in page.get("Contents", []))
        except (BotoCoreError, ClientError, OSError) as exc:
            raise BucketError(f"cannot list s3://{self._bucket}/{full_prefix}: {exc}") from exc
        return sorted(keys)

    async def get(self, key: str) -> bytes:
        """GET the object `key` (prefix included); `ObjectNotFound` if it is missing or outside the prefix."""
        if self._prefix and not _readable_key(key).startswith(f"{self._prefix}/"):
            raise ObjectNotFound(f"{key!r} is not under s3://{self._bucket}/{self._prefix}")
        try:
            async with self._session.create_client("s3", endpoint_url=self._endpoint_url, config=_S3_CONFIG) as s3:
                response = await s3.get_object(Bucket=self._bucket, Key=_readable_key(key))
                async with response["Body"] as body:
                    data: bytes = await body.read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise ObjectNotFound(f"no object s3://{self._bucket}/{key}") from exc
            raise BucketError(f"cannot get s3://{self._bucket}/{key}: {exc}") from exc
        except (BotoCoreError, OSError) as exc:
            raise BucketError(f"cannot get s3://{self._bucket}/{key}: {exc}") from exc
        return data


def bucket_from_settings(settings: Settings) -> Bucket:
    """The bucket `settings.reports_url` names: `s3://bucket/prefix` or a local folder."""
    url = urlsplit(settings.reports_url)
    if url.scheme == "s3":
        if not url.netloc:
            raise BucketError(f"{settings.reports_url!r} names no bucket (use s3://bucket/prefix)")
        return S3Bucket(url.netloc, url.path, endpoint_url=settings.s3_endpoint_url)
    return LocalFolderBucket(Path(settings.reports_url))
