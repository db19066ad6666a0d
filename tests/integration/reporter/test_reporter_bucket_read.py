"""Reading report objects back, one contract on both buckets: a local folder and S3 (a moto server)."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiobotocore.session import get_session
from botocore.config import Config

from services.reporter.adapters.bucket import LocalFolderBucket, S3Bucket
from services.reporter.ports import Bucket, BucketError, ObjectNotFound

BUCKET = "certmon-read-back"


@pytest.fixture(params=["folder", "s3"])
async def bucket(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Bucket]:
    """A local folder, or an empty S3 bucket whose reports go under the prefix `reports`."""
    if request.param == "folder":
        yield LocalFolderBucket(tmp_path / "reports")
        return
    endpoint: str = request.getfixturevalue("s3_endpoint")
    config = Config(signature_version="s3v4", s3={"addressing_style": "path"})
    async with get_session().create_client("s3", endpoint_url=endpoint, config=config) as s3:
        await s3.create_bucket(Bucket=BUCKET)
    yield S3Bucket(BUCKET, "reports", endpoint_url=endpoint)


async def test_an_object_reads_back_by_the_key_put_answered(bucket: Bucket) -> None:
    """`get` of the object key `put` returned gives the bytes written, the same key `list` shows."""
    key = await bucket.put("daily/2026-11-27/status.html", b"<!DOCTYPE html>", "text/html; charset=utf-8")
    assert await bucket.list("daily/") == [key]
    assert await bucket.get(key) == b"<!DOCTYPE html>"


async def test_a_file_put_reads_back_whole(bucket: Bucket, tmp_path: Path) -> None:
    """`put_file` stores the file's bytes (several megabytes: more than one block of a copy), and writing the
    same key again replaces them."""
    source = tmp_path / "daily.csv"
    content = bytes(range(256)) * 24_000
    source.write_bytes(content)
    key = await bucket.put_file("custom/2026-11-27/shop.csv", source, "text/csv; charset=utf-8")
    assert await bucket.get(key) == content
    source.write_bytes(b"target\r\n")
    assert await bucket.put_file("custom/2026-11-27/shop.csv", source, "text/csv; charset=utf-8") == key
    assert await bucket.get(key) == b"target\r\n"
    assert await bucket.list("custom/") == [key]


async def test_a_missing_object_is_not_found(bucket: Bucket) -> None:
    """A key naming no object raises ObjectNotFound, which is a BucketError."""
    key = await bucket.put("daily/2026-11-27/status.json", b"{}", "application/json")
    with pytest.raises(ObjectNotFound):
        await bucket.get(key.replace("status.json", "status.csv"))
    assert issubclass(ObjectNotFound, BucketError)


async def test_keys_leaving_the_bucket_find_nothing(bucket: Bucket) -> None:
    """`..`, absolute paths and backslashes never read anything: no object has such a key."""
    for key in ("../secret", "/etc/passwd", "daily/../../x", "a\\b", ""):
        with pytest.raises(ObjectNotFound):
            await bucket.get(key)


async def test_s3_serves_only_what_is_under_its_prefix(s3_endpoint: str) -> None:
    """An object of the same bucket outside the prefix is not found through the reporter's bucket."""
    config = Config(signature_version="s3v4", s3={"addressing_style": "path"})
    async with get_session().create_client("s3", endpoint_url=s3_endpoint, config=config) as s3:
        await s3.create_bucket(Bucket=BUCKET)
        await s3.put_object(Bucket=BUCKET, Key="other/secret.txt", Body=b"not a report")
    reports = S3Bucket(BUCKET, "reports", endpoint_url=s3_endpoint)
    with pytest.raises(ObjectNotFound):
        await reports.get("other/secret.txt")
    assert await S3Bucket(BUCKET, endpoint_url=s3_endpoint).get("other/secret.txt") == b"not a report"


async def test_a_link_out_of_the_folder_is_not_followed(tmp_path: Path) -> None:
    """A symbolic link inside the reports folder that points outside it is not found."""
    (tmp_path / "secret.txt").write_text("not a report")
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "leak.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(ObjectNotFound):
        await LocalFolderBucket(folder).get("leak.txt")
