"""A person's own image-to-image data, laid out in one of two ways (detected):

- folders: path/A/ and path/B/ (or a/ b/, or trainA/ trainB/ as CycleGAN's data sets name them), paired by
  file name stem (A/0001.png with B/0001.jpg) or unpaired (each folder on its own);
- side_by_side: every image in path is one "A|B" picture, left half A, right half B (pix2pix's data sets).

Each image is read as engine.data.images.load_folder reads one: grey or RGB, centre-cropped, resized
with bicubic; unreadable files, images over MAX_IMAGE_PIXELS and links leading outside the folder are
skipped and counted in one warning sentence per folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from engine.data.images import (MAX_IMAGE_PIXELS, OUTSIDE, TOO_LARGE, UNREADABLE, DataError, ProgressFn,
                                WarnFn, _eight_bit, _folder_files, fit_square, open_image, skip_warning)

DOMAIN_FOLDERS = (("A", "B"), ("a", "b"), ("trainA", "trainB"))
SIDE_BY_SIDE_RATIO = (1.8, 2.2)  # width / height of an A|B picture
WRONG_SHAPE = "not about twice as wide as high"
NO_NAME_PARTNER = "with no file of the same name in the other folder"
PARTNER_UNREADABLE = "whose partner could not be read"
SAME_NAME = "sharing a name with another file in the same folder"


@dataclass
class PairImages:
    a: torch.Tensor  # uint8 N_a x channels x size x size
    b: torch.Tensor  # uint8 N_b x channels x size x size
    names_a: list[str]  # file names relative to A/ (or the folder), in the order of a
    names_b: list[str]
    paired: bool  # True: a[i] and b[i] are a pair (N_a == N_b)
    layout: str  # "folders" or "side_by_side"


def load_pair_folder(path: str, size: int, channels: int, paired: bool, progress: ProgressFn | None = None,
                     warn: WarnFn | None = None) -> PairImages:
    """The images under path as two domains A and B; DataError (one sentence) for data that cannot be used.
    Side-by-side pictures are always paired."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(f"{root} is not a folder; choose a folder with A/ and B/ sub-folders or of "
                        f"side-by-side A|B pictures.")
    if not any(not entry.name.startswith(".") for entry in root.iterdir()):
        raise DataError(f"{root} is empty; put the images in A/ and B/ sub-folders or side by side in it.")
    folders = _domain_folders(root)
    if folders is None:
        return _side_by_side(root, size, channels, progress, warn)
    dir_a, dir_b = folders
    files_a, outside_a = _folder_files(dir_a)
    files_b, outside_b = _folder_files(dir_b)
    for folder, files, outside in ((dir_a, files_a, outside_a), (dir_b, files_b, outside_b)):
        if not files and not outside:
            raise DataError(f"{folder} is empty; put that domain's PNG or JPEG files in it.")
    if paired:
        return _paired_folders(root, dir_a, dir_b, files_a, files_b, outside_a, outside_b, size, channels,
                               progress, warn)
    tick = _ticker(progress, f"Reading images in {root.name}", len(files_a) + len(files_b))
    use = lambda img: fit_square(img, size, channels)  # noqa: E731
    a, names_a = _read_domain(dir_a, files_a, outside_a, use, tick, warn)
    b, names_b = _read_domain(dir_b, files_b, outside_b, use, tick, warn)
    return PairImages(a, b, names_a, names_b, False, "folders")


def _domain_folders(root: Path) -> tuple[Path, Path] | None:
    """The A and B sub-folders of root, None when it has neither (side-by-side pictures)."""
    for name_a, name_b in DOMAIN_FOLDERS:
        if (root / name_a).is_dir() and (root / name_b).is_dir():
            return root / name_a, root / name_b
    for name_a, name_b in DOMAIN_FOLDERS:
        for have, lack in ((name_a, name_b), (name_b, name_a)):
            if (root / have).is_dir():
                raise DataError(f"{root} has {have}/ but no {lack}/; put the other domain's images in "
                                f"{lack}/ next to {have}/.")
    return None


def _ticker(progress: ProgressFn | None, task: str, total: int) -> Callable[[], None]:
    """A function to call after each file: it reports progress on the first, every 200th and the last."""
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress and (done % 200 == 1 or done == total):
            progress(task, done, total)
    return tick


def _relative(file: Path, base: Path) -> str:
    return file.relative_to(base).as_posix()


def _read(base: Path, files: list[Path], use: Callable, tick: Callable[[], None],
          skipped: dict[str, list[str]]) -> tuple[list, list[str]]:
    """use(image) for each readable file (names relative to base); the others' names go into skipped."""
    got, names = [], []
    for file in files:
        result = open_image(file, use)
        tick()
        if isinstance(result, str):
            skipped.setdefault(result, []).append(_relative(file, base))
        else:
            got.append(result)
            names.append(_relative(file, base))
    return got, names


def _skipped(outside: list[Path], base: Path) -> dict[str, list[str]]:
    return {UNREADABLE: [], TOO_LARGE: [], OUTSIDE: [_relative(p, base) for p in outside]}


def _no_images(folder: Path, total: int, what: str = "") -> DataError:
    return DataError(f"{folder} holds no readable image{what} ({total} files were not images, were over "
                     f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels or linked outside it); put PNG or JPEG "
                     f"files in it.")


def _read_domain(folder: Path, files: list[Path], outside: list[Path], use: Callable, tick: Callable[[], None],
                 warn: WarnFn | None) -> tuple[torch.Tensor, list[str]]:
    """Every readable image of one domain's folder (unpaired)."""
    skipped = _skipped(outside, folder)
    arrays, names = _read(folder, files, use, tick, skipped)
    total = len(files) + len(outside)
    if not arrays:
        raise _no_images(folder, total)
    if warn and any(skipped.values()):
        warn(skip_warning(skipped, total, folder))
    return torch.from_numpy(np.stack(arrays)), names


def _by_stem(files: list[Path], base: Path) -> tuple[dict[str, Path], list[Path]]:
    """Files by their name without its suffix (relative to base), and the later ones of the same name."""
    found, again = {}, []
    for file in files:
        key = file.relative_to(base).with_suffix("").as_posix()
        if key in found:
            again.append(file)
        else:
            found[key] = file
    return found, again


def _paired_folders(root: Path, dir_a: Path, dir_b: Path, files_a: list[Path], files_b: list[Path],
                    outside_a: list[Path], outside_b: list[Path], size: int, channels: int,
                    progress: ProgressFn | None, warn: WarnFn | None) -> PairImages:
    """Pairs matched by file name stem; a file without a readable partner is skipped and counted."""
    stems_a, again_a = _by_stem(files_a, dir_a)
    stems_b, again_b = _by_stem(files_b, dir_b)
    common = [key for key in stems_a if key in stems_b]
    if not common:
        raise DataError(f"{root}: no file in {dir_a.name}/ has a partner of the same name in {dir_b.name}/; "
                        f"name each pair alike ({dir_a.name}/0001.png and {dir_b.name}/0001.jpg) or train "
                        f"unpaired.")
    tick = _ticker(progress, f"Reading images in {root.name}", 2 * len(common))
    use = lambda img: fit_square(img, size, channels)  # noqa: E731
    read = {}
    for folder, files, stems, outside in ((dir_a, files_a, stems_a, outside_a),
                                          (dir_b, files_b, stems_b, outside_b)):
        skipped = _skipped(outside, folder)
        arrays, names = _read(folder, [stems[key] for key in common], use, tick, skipped)
        read[folder] = {_stem(name): (arr, name) for arr, name in zip(arrays, names)}
        if not read[folder]:
            raise _no_images(folder, len(common), " among the files with a partner")
        if warn and any(skipped.values()):
            warn(skip_warning(skipped, len(files) + len(outside), folder))
    pairs = [key for key in common if key in read[dir_a] and key in read[dir_b]]
    paired_keys = set(pairs)
    if not pairs:
        raise DataError(f"{root}: no readable image in {dir_a.name}/ has a readable partner of the same name "
                        f"in {dir_b.name}/; replace the files that cannot be read.")
    lone = {NO_NAME_PARTNER: [], PARTNER_UNREADABLE: [], SAME_NAME: []}
    for folder, stems, other, again in ((dir_a, stems_a, stems_b, again_a), (dir_b, stems_b, stems_a, again_b)):
        for key, file in stems.items():
            if key not in other:
                lone[NO_NAME_PARTNER].append(f"{folder.name}/{_relative(file, folder)}")
            elif key in read[folder] and key not in paired_keys:
                lone[PARTNER_UNREADABLE].append(f"{folder.name}/{_relative(file, folder)}")
        lone[SAME_NAME] += [f"{folder.name}/{_relative(file, folder)}" for file in again]
    count = sum(len(names) for names in lone.values())
    if warn and count:
        reasons = ", ".join(f"{len(names)} {reason}" for reason, names in lone.items() if names)
        shown = [name for names in lone.values() for name in names]
        warn(f"Skipped {count} files in {root} without a partner: {reasons} ({', '.join(shown[:3])}"
             f"{' …' if len(shown) > 3 else ''}).")
    a = torch.from_numpy(np.stack([read[dir_a][key][0] for key in pairs]))
    b = torch.from_numpy(np.stack([read[dir_b][key][0] for key in pairs]))
    return PairImages(a, b, [read[dir_a][key][1] for key in pairs], [read[dir_b][key][1] for key in pairs],
                      True, "folders")


def _stem(name: str) -> str:
    return Path(name).with_suffix("").as_posix()


def _halves(img, size: int, channels: int) -> tuple[np.ndarray, np.ndarray] | str:
    """An A|B picture's left and right halves, each fitted to a square; WRONG_SHAPE for another shape."""
    w, h = img.size
    if not SIDE_BY_SIDE_RATIO[0] <= w / h <= SIDE_BY_SIDE_RATIO[1]:
        return WRONG_SHAPE
    img = _eight_bit(img)
    half = w // 2
    return (fit_square(img.crop((0, 0, half, h)), size, channels),
            fit_square(img.crop((w - half, 0, w, h)), size, channels))


def _side_by_side(root: Path, size: int, channels: int, progress: ProgressFn | None,
                  warn: WarnFn | None) -> PairImages:
    """Every picture under root split into its A (left) and B (right) halves."""
    files, outside = _folder_files(root)
    total = len(files) + len(outside)
    if not total:
        raise DataError(f"{root} is empty; put the images in A/ and B/ sub-folders or side by side in it.")
    skipped = _skipped(outside, root)
    skipped[WRONG_SHAPE] = []
    tick = _ticker(progress, f"Reading images in {root.name}", len(files))
    halves, names = _read(root, files, lambda img: _halves(img, size, channels), tick, skipped)
    if not halves:
        raise DataError(f"{root} has no A/ and B/ sub-folders and no usable side-by-side picture ({total} files "
                        f"were not images about twice as wide as high, were over "
                        f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels or linked outside it); put A|B pictures "
                        f"(e.g. 512x256) in it, or each domain's images in A/ and B/.")
    if warn and any(skipped.values()):
        warn(skip_warning(skipped, total, root))
    a = torch.from_numpy(np.stack([pair[0] for pair in halves]))
    b = torch.from_numpy(np.stack([pair[1] for pair in halves]))
    return PairImages(a, b, names, list(names), True, "side_by_side")
