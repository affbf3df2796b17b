"""A person's own image-to-image folders: A/ and B/ paired by name or unpaired, side-by-side A|B pictures."""

import numpy as np
import pytest
import torch
from PIL import Image

from engine.data.images import DataError
from engine.img2img.folders import load_pair_folder


def flat(path, value, size=(24, 24), mode="L"):
    """A picture of one grey value (mode L) or one colour (mode RGB) at size (width, height)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], 3)
    Image.fromarray(np.full(shape, value, np.uint8), mode).save(path)


def test_pairs_are_matched_by_name_across_formats_and_lone_files_are_counted(tmp_path):
    for i, suffix in enumerate((".png", ".jpg", ".png")):
        flat(tmp_path / "A" / f"000{i}.png", 10 * i)
        flat(tmp_path / "B" / f"000{i}{suffix}", 100 + 10 * i)
    flat(tmp_path / "A" / "lonely.png", 0)
    flat(tmp_path / "B" / "orphan1.png", 0)
    flat(tmp_path / "B" / "orphan2.png", 0)
    told = []
    data = load_pair_folder(str(tmp_path), 16, 1, paired=True, warn=told.append)
    assert data.paired and data.layout == "folders"
    assert data.a.shape == data.b.shape == (3, 1, 16, 16) and data.a.dtype == torch.uint8
    assert data.names_a == ["0000.png", "0001.png", "0002.png"]
    assert data.names_b == ["0000.png", "0001.jpg", "0002.png"]
    for i in range(3):  # the right partners side by side
        assert abs(data.a[i].float().mean() - 10 * i) < 2 and abs(data.b[i].float().mean() - 100 - 10 * i) < 2
    assert len(told) == 1 and "Skipped 3 files" in told[0] and "partner" in told[0]


def test_unpaired_folders_load_different_counts(tmp_path):
    for i in range(3):
        flat(tmp_path / "trainA" / f"horse{i}.png", 50)
    for i in range(5):
        flat(tmp_path / "trainB" / f"zebra{i}.jpg", 200)
    told = []
    data = load_pair_folder(str(tmp_path), 8, 1, paired=False, warn=told.append)
    assert not data.paired and data.layout == "folders" and told == []
    assert len(data.a) == 3 and len(data.b) == 5 and data.names_b[0] == "zebra0.jpg"


def test_cyclegan_folder_names_pair_too(tmp_path):
    flat(tmp_path / "trainA" / "x.png", 1)
    flat(tmp_path / "trainB" / "x.png", 2)
    data = load_pair_folder(str(tmp_path), 8, 1, paired=True)
    assert data.paired and len(data.a) == len(data.b) == 1


def test_side_by_side_pictures_split_into_left_a_and_right_b(tmp_path):
    for i in range(3):
        picture = np.zeros((32, 64, 3), np.uint8)
        picture[:, :32] = (200, 30, 30)
        picture[:, 32:] = (20, 40, 220)
        Image.fromarray(picture).save(tmp_path / f"{i}.png")
    flat(tmp_path / "square.png", 9, (32, 32))  # not an A|B picture
    told = []
    data = load_pair_folder(str(tmp_path), 16, 3, paired=False, warn=told.append)
    assert data.paired and data.layout == "side_by_side"
    assert data.a.shape == data.b.shape == (3, 3, 16, 16)
    assert data.names_a == data.names_b == ["0.png", "1.png", "2.png"]
    assert data.a.float().mean((0, 2, 3)).round().tolist() == [200, 30, 30]
    assert data.b.float().mean((0, 2, 3)).round().tolist() == [20, 40, 220]
    assert len(told) == 1 and "Skipped 1 of 4" in told[0] and "twice as wide" in told[0]


def test_grey_files_give_three_channels_when_asked(tmp_path):
    flat(tmp_path / "a" / "1.png", 77)
    flat(tmp_path / "b" / "1.png", 77)
    data = load_pair_folder(str(tmp_path), 8, 3, paired=True)
    assert data.a.shape == (1, 3, 8, 8) and int(data.b.min()) == int(data.b.max()) == 77


def test_a_corrupt_file_is_skipped_and_counted(tmp_path):
    for i in range(3):
        flat(tmp_path / "A" / f"{i}.png", 10)
        flat(tmp_path / "B" / f"{i}.png", 20)
    (tmp_path / "A" / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    told = []
    data = load_pair_folder(str(tmp_path), 8, 1, paired=True, warn=told.append)
    assert data.names_a == data.names_b == ["0.png", "2.png"]
    assert any("Skipped 1 of 3 files" in t and "not readable" in t for t in told)
    assert any("1 whose partner could not be read" in t for t in told)  # B/1.png lost its partner
    data = load_pair_folder(str(tmp_path), 8, 1, paired=False, warn=told.append)
    assert len(data.a) == 2 and len(data.b) == 3


def test_progress_is_reported(tmp_path):
    for i in range(3):
        flat(tmp_path / "A" / f"{i}.png", 1)
        flat(tmp_path / "B" / f"{i}.png", 1)
    seen = []
    load_pair_folder(str(tmp_path), 8, 1, paired=True, progress=lambda *a: seen.append(a))
    assert seen[0][1:] == (1, 6) and seen[-1][1:] == (6, 6)


@pytest.mark.parametrize("make, paired, words", [
    (lambda p: None, True, "is empty"),
    (lambda p: (p / "sub.txt").write_text("x"), True, "not a folder"),
    (lambda p: flat(p / "A" / "1.png", 1), True, "has A/ but no B/"),
    (lambda p: (flat(p / "A" / "1.png", 1), flat(p / "B" / "2.png", 1)), True, "no file in A/ has a partner"),
    (lambda p: (flat(p / "A" / "1.png", 1), (p / "B").mkdir()), False, "B is empty"),
    (lambda p: (flat(p / "A" / "1.png", 1), (p / "B").mkdir(), (p / "B" / "x.png").write_text("x")), False,
     "no readable image"),
    (lambda p: flat(p / "square.png", 1), True, "no usable side-by-side picture"),
])
def test_bad_folders_are_one_clear_error(tmp_path, make, paired, words):
    folder = tmp_path / "data"
    folder.mkdir()
    make(folder)
    target = folder / "sub.txt" if words == "not a folder" else folder
    with pytest.raises(DataError, match=words) as caught:
        load_pair_folder(str(target), 8, 1, paired=paired)
    assert caught.value.args[0].count("; ") == 1  # what is wrong; what to do

