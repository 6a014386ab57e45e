"""CIFAR10 archives (drift_core.images.data.load_cifar10): interrupted or corrupt downloads are never used."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_images import tiny_cifar  # noqa: F401  (a tiny CIFAR10-format archive + md5 table)


def test_corrupt_cifar10_archive_is_detected_set_aside_and_reported(tiny_cifar):
    from drift_core.images.data import DatasetUnavailable, load_cifar10

    root, _ = tiny_cifar
    archive = root / "cifar-10-python.tar.gz"
    good = archive.read_bytes()
    archive.write_bytes(good[: len(good) // 2])  # a partial file, as an interrupted download leaves it
    with pytest.raises(DatasetUnavailable, match="failed its MD5 checksum.*not used") as info:
        load_cifar10(root)
    assert "cifar-10-python.tar.gz.corrupt" in str(info.value)
    assert not archive.exists() and (root / "cifar-10-python.tar.gz.corrupt").is_file()
    assert not (root / "cifar-10-batches-py").exists()  # nothing was extracted from it
    archive.write_bytes(good)  # the real archive again: it verifies and loads
    assert len(load_cifar10(root)) == 15


def test_partially_extracted_cifar10_folder_is_not_used(tiny_cifar):
    from drift_core.images.data import DatasetUnavailable, load_cifar10

    root, _ = tiny_cifar
    load_cifar10(root)
    (root / "cifar-10-python.tar.gz").unlink()
    (root / "cifar-10-batches-py" / "data_batch_4").write_bytes(b"\x80\x02half a pickle")
    with pytest.raises(DatasetUnavailable, match="data_batch_4 fails its MD5 checksum"):
        load_cifar10(root)
    (root / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(DatasetUnavailable, match="data_batch_4 fails its MD5 checksum"):
        load_cifar10(root)


def test_interrupted_cifar10_download_leaves_nothing_usable(tiny_cifar, monkeypatch):
    import torchvision.datasets.utils as tv_utils

    from drift_core.images.data import DatasetUnavailable, load_cifar10

    root, _ = tiny_cifar
    archive = root / "cifar-10-python.tar.gz"
    good = archive.read_bytes()
    archive.unlink()

    def cut_off(url, filename, chunk_size=1024 * 32):  # the connection drops half-way through
        with open(filename, "wb") as fh:
            fh.write(good[: len(good) // 3])
        raise OSError("connection reset by peer")

    monkeypatch.setattr(tv_utils, "_get_redirect_url", lambda url, max_hops=3: url)
    monkeypatch.setattr(tv_utils, "_urlretrieve", cut_off)
    with pytest.raises(DatasetUnavailable, match="connection reset by peer.*failed its MD5 checksum"):
        load_cifar10(root, download=True)  # torchvision's real download path, with the network cut
    assert not archive.exists() and (root / "cifar-10-python.tar.gz.corrupt").is_file()
    assert not (root / "cifar-10-batches-py").exists()

    def complete(url, filename, chunk_size=1024 * 32):
        Path(filename).write_bytes(good)

    monkeypatch.setattr(tv_utils, "_urlretrieve", complete)
    assert len(load_cifar10(root, download=True)) == 15  # a retry downloads, verifies and extracts
