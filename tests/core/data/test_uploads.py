"""Uploaded training files are kept once under LAB_HOME/cache/uploads/<content hash>/<name as uploaded>."""

import zipfile

import pytest

from conftest import zip_bytes
from core.data.text import save_upload
from core.data.uploads import keep_upload, keep_zip_upload
from core.errors import DataError


def test_the_same_upload_twice_is_one_file_and_different_ones_are_two(lab_home):
    first = keep_upload(b"hello", "notes.txt")
    assert first.read_bytes() == b"hello" and first.parent.parent == lab_home / "cache" / "uploads"
    assert first.name == "notes.txt"
    assert keep_upload(b"hello", "notes.txt") == first
    assert keep_upload(b"hello!", "notes.txt") != first
    # the text corpus upload goes through the same place after its own checks
    assert save_upload(b"hello", "notes.txt") == first
    # a name cannot climb out of its folder or hide
    odd = keep_upload(b"odd", "../../etc/.passwd")
    assert odd.parent.parent == lab_home / "cache" / "uploads" and odd.name == "passwd"


def test_a_zip_upload_is_checked_before_it_is_kept(lab_home):
    kept = keep_zip_upload(zip_bytes({"train/cat/a.png": b"x"}), "pets.zip")
    assert kept.suffix == ".zip" and zipfile.is_zipfile(kept)
    with pytest.raises(DataError, match="photos.zip is not a .zip file"):
        keep_zip_upload(b"PNG... not a zip", "photos.zip")
    with pytest.raises(DataError, match="empty.zip is empty"):
        keep_zip_upload(b"", "empty.zip")
    assert [p for p in (lab_home / "cache" / "uploads").rglob("*") if p.is_file()] == [kept]
    assert kept.name == "pets.zip"
