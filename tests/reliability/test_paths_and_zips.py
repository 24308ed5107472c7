"""Server paths are read only under allowed roots; training zips obey the same unpacking limits as Media,
say why they were refused, leave nothing half-unpacked, and their unpacked copies are cleaned up.

Reproduces: `/etc` was scanned from the Train form; an 8 GiB zip bomb was unpacked on the training path
and the message only said "has no training images"; unpacked uploads were never removed."""

import os
import time
import zipfile
from pathlib import Path

import pytest

from conftest import encode_image, noise_image, zip_bytes
from core import jobs
from core.config import DataConfig
from core.data.folder import build_folder, extract_zip, remove_unpacked
from core.data.media import images_from_zip
from core.data.roots import readable_path
from core.data.uploads import keep_zip_upload
from core.errors import DataError, InputError
from core.presets import preset
from core.store import RunStore


def image_folder(root: Path) -> Path:
    for label in ("cat", "dog"):
        (root / "train" / label).mkdir(parents=True)
        for i in range(3):
            (root / "train" / label / f"{i}.png").write_bytes(encode_image(noise_image(seed=i), "PNG"))
    return root


def folder_config(path) -> DataConfig:
    return DataConfig(name="folder", path=str(path), image_size=16)


def test_a_folder_outside_the_allowed_roots_is_refused_with_the_setting_named(lab_home, tmp_path, monkeypatch):
    outside = image_folder(tmp_path / "photos")
    monkeypatch.setenv("LAB_DATA_ROOTS", "")
    for path in ("/etc", str(outside), str(lab_home / "runs")):
        with pytest.raises(DataError, match="LAB_DATA_ROOTS") as refused:
            build_folder(folder_config(path), seed=0)
        assert "Traceback" not in str(refused.value)
    # inside LAB_HOME/data it reads, and so it does once its parent is an allowed root
    inside = image_folder(lab_home / "data" / "pets")
    assert len(build_folder(folder_config(inside), seed=0).classes) == 2
    monkeypatch.setenv("LAB_DATA_ROOTS", str(tmp_path))
    assert len(build_folder(folder_config(outside), seed=0).classes) == 2


def test_a_link_placed_inside_a_root_is_followed_but_dot_dot_is_not(lab_home, tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_DATA_ROOTS", "")
    target = image_folder(tmp_path / "elsewhere")
    (lab_home / "data").mkdir(parents=True, exist_ok=True)
    (lab_home / "data" / "linked").symlink_to(target)
    assert readable_path(str(lab_home / "data" / "linked")) == lab_home / "data" / "linked"
    with pytest.raises(DataError, match="'..'"):
        readable_path(str(lab_home / "data" / "linked" / ".." / ".." / "etc"))


def test_the_cli_refuses_a_folder_outside_the_roots_in_one_sentence(lab_home, tmp_path, monkeypatch):
    import subprocess
    import sys
    monkeypatch.setenv("LAB_DATA_ROOTS", str(lab_home / "nothing-here"))
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-m", "core", "train", "--dataset", "folder", "--data-path", "/etc",
                           "--epochs", "1"], cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "/etc is outside the folders the lab may read" in done.stderr and "LAB_DATA_ROOTS" in done.stderr


def bomb(path: Path, members: int = 3, megabytes: int = 300) -> Path:
    """Zeros compress about 1000:1: a small file that declares `members` x `megabytes` MB of PNGs."""
    chunk = b"\0" * (1 << 20)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for m in range(members):
            with archive.open(f"train/cls{m % 2}/{m}.png", "w", force_zip64=True) as handle:
                for _ in range(megabytes):
                    handle.write(chunk)
    return path


def test_a_training_zip_bomb_is_refused_by_the_shared_limit_and_nothing_is_unpacked(lab_home, monkeypatch):
    monkeypatch.setenv("LAB_MAX_UNZIPPED_MB", "500")  # Media's figure, through the one setting
    zipped = bomb(lab_home.parent / "bomb.zip")
    assert zipped.stat().st_size < 3 * 1024**2
    with pytest.raises(DataError) as refused:
        build_folder(folder_config(zipped), seed=0)
    message = str(refused.value)
    assert "bomb.zip would unpack to 900 MB" in message and "limit is 500 MB" in message
    assert "LAB_MAX_UNZIPPED_MB" in message and "no training images" not in message
    assert not any((lab_home / "cache" / "folders").iterdir())
    # Media reads the same setting
    with pytest.raises(InputError, match="limit is 500 MB"):
        images_from_zip(zipped.read_bytes(), "bomb.zip")


def test_too_many_members_are_refused_by_the_shared_file_count(lab_home, monkeypatch):
    monkeypatch.setenv("LAB_MAX_ZIP_FILES", "10")
    many = lab_home.parent / "many.zip"
    with zipfile.ZipFile(many, "w") as archive:
        for i in range(12):
            archive.writestr(f"train/c{i % 2}/{i}.png", encode_image(noise_image(seed=i), "PNG"))
    with pytest.raises(DataError, match="many.zip holds 12 images; the limit is 10"):
        build_folder(folder_config(many), seed=0)
    with pytest.raises(InputError, match="the limit is 10"):
        images_from_zip(many.read_bytes(), "many.zip")


def test_an_uploaded_zip_is_named_as_the_user_uploaded_it_in_messages(lab_home, monkeypatch):
    monkeypatch.setenv("LAB_MAX_UNZIPPED_MB", "1")
    payload = bomb(lab_home.parent / "x.zip", members=2, megabytes=2).read_bytes()
    with pytest.raises(DataError, match="holiday photos.zip would unpack"):
        keep_zip_upload(payload, "holiday photos.zip")
    monkeypatch.setenv("LAB_MAX_UNZIPPED_MB", "100")
    kept = keep_zip_upload(payload, "holiday photos.zip")
    monkeypatch.setenv("LAB_MAX_UNZIPPED_MB", "1")
    with pytest.raises(DataError) as refused:
        build_folder(folder_config(kept), seed=0)
    assert str(refused.value).startswith("holiday photos.zip would unpack")
    assert str(lab_home) not in str(refused.value)


def test_an_unpack_that_fails_midway_leaves_no_partial_folder(lab_home, monkeypatch):
    source = image_folder(lab_home.parent / "src")
    zipped = lab_home.parent / "pets.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        for path in sorted(source.rglob("*.png")):
            archive.write(path, path.relative_to(source).as_posix())
    real_copy, copied = __import__("shutil").copyfileobj, []

    def fail_on_third(src, dst, length=0):
        copied.append(1)
        if len(copied) == 3:
            raise OSError(5, "Input/output error")
        return real_copy(src, dst, length)

    monkeypatch.setattr("core.data.folder.shutil.copyfileobj", fail_on_third)
    with pytest.raises(DataError, match="could not unpack .*pets.zip: Input/output error"):
        extract_zip(zipped)
    assert list((lab_home / "cache" / "folders").iterdir()) == []


def test_unpacked_copies_beyond_the_budget_go_least_recently_used_first(lab_home, monkeypatch):
    parent = lab_home / "cache" / "folders"
    old_time = time.time() - 3 * 3600
    for i, name in enumerate(["oldest", "older", "recent"]):
        folder = parent / name
        folder.mkdir(parents=True)
        (folder / "data.bin").write_bytes(b"\0" * (1 << 20))
        (folder / ".complete").touch()
        used = old_time + i * 60 if name != "recent" else time.time()
        os.utime(folder / ".complete", (used, used))
    stale = parent / "abc.part"
    stale.mkdir()
    os.utime(stale, (old_time, old_time))
    monkeypatch.setenv("LAB_UNPACKED_BUDGET_MB", "2")
    removed = remove_unpacked(parent, keep_free=1 << 20)
    assert [p.name for p in removed] == ["abc.part", "oldest", "older"]  # the dead unpack, then by last use
    assert [p.name for p in parent.iterdir()] == ["recent"]  # used in the last hour: kept although over budget


def test_deleting_a_run_removes_its_upload_and_unpacked_copy_unless_another_run_uses_it(lab_home):
    source = image_folder(lab_home.parent / "src2")
    payload_path = lab_home.parent / "pets.zip"
    with zipfile.ZipFile(payload_path, "w") as archive:
        for path in sorted(source.rglob("*.png")):
            archive.write(path, path.relative_to(source).as_posix())
    kept = keep_zip_upload(payload_path.read_bytes(), "pets.zip")
    unrelated = keep_zip_upload(zip_bytes({"train/a/1.png": b"x", "train/b/2.png": b"y"}), "other.zip")
    old_style = lab_home / "cache" / "uploads" / "0123456789abcdef.zip"  # how uploads were kept before
    old_style.write_bytes(payload_path.read_bytes())
    config = preset("digits-mlp").replace(**{"data.name": "folder", "data.path": str(kept), "data.image_size": 16})
    first, second = jobs.create(config), jobs.create(config)
    for run_id in (first, second):
        RunStore().finish(run_id, "completed")
    build_folder(folder_config(kept), seed=0)  # unpacks it
    assert any((lab_home / "cache" / "folders").iterdir())
    jobs.delete_run(first)
    assert kept.exists()  # the second run still names it
    jobs.delete_run(second)
    assert not kept.exists() and not kept.parent.exists() and not any((lab_home / "cache" / "folders").iterdir())
    assert unrelated.exists() and old_style.exists()  # only the deleted runs' upload goes
    old_run = jobs.create(config.replace(**{"data.path": str(old_style)}))
    RunStore().finish(old_run, "completed")
    jobs.delete_run(old_run)
    assert not old_style.exists() and unrelated.exists()
    assert RunStore().count_runs() == 0
