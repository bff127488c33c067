"""ASVspoof 2021 DF (``DATASET = "asvspoof2021_df"``): a local copy, or a verified download.

Official sources: the evaluation audio on Zenodo record 4835108 (``ASVspoof2021_DF_eval_part00``
... ``part03``, about 8.6 GB each; the thesis used part00) and the keys ``DF-keys-full.tar.gz``
from asvspoof.org (MD5 ``dabbc5628de4fcef53036c99ac7ab93a`` as listed by the official
evaluation package). Downloads go through pooch with a resumable HTTP-range downloader and are
verified against their hash before use; a part whose hash is not known to this project must be
given one (``ASVSPOOF2021_DF_MD5_PART00=...``, from the Zenodo record page) or it is refused.

Only the sampled trials are extracted, streaming the tar, each member checked by Python's
``tarfile`` data filter (no absolute paths, no ``..``, no links or devices) and written
atomically under its own trial name.
"""

from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pooch
import requests
from urllib.parse import urlparse
from tqdm.auto import tqdm

from helpers.io import atomic_path, atomic_write, load_json, save_json
from helpers.data.keys import format_keys, frame_to_records, parse_keys, records_to_frame

ZENODO = "https://zenodo.org/records/4835108/files/"
KEYS_URL = "https://www.asvspoof.org/asvspoof2021/DF-keys-full.tar.gz"
KEYS_MEMBER = "keys/DF/CM/trial_metadata.txt"
AUDIO_PREFIX = "ASVspoof2021_DF_eval/flac/"


@dataclass(frozen=True)
class Remote:
    name: str
    url: str
    md5: str | None      # None: not known to this project; must be supplied by the user
    size: int | None


REGISTRY: dict[str, Remote] = {
    "keys": Remote("DF-keys-full.tar.gz", KEYS_URL, "dabbc5628de4fcef53036c99ac7ab93a", None),
    **{f"part0{i}": Remote(f"ASVspoof2021_DF_eval_part0{i}.tar.gz", f"{ZENODO}ASVspoof2021_DF_eval_part0{i}.tar.gz",
                           None, size)
       for i, size in enumerate((8637050238, 8624944890, 8616337195, 8656151261))},
}


class DownloadError(RuntimeError):
    """A download that cannot be verified or completed."""


class UnsafeArchiveError(RuntimeError):
    """An archive member that would escape the target folder or is not a regular file."""


def _md5_for(key: str, remote: Remote) -> str:
    md5 = os.environ.get(f"ASVSPOOF2021_DF_MD5_{key.upper()}") or remote.md5
    if not md5:
        raise DownloadError(
            f"no known MD5 for {remote.name}; copy it from https://zenodo.org/records/4835108 and set "
            f"ASVSPOOF2021_DF_MD5_{key.upper()}=<md5>, or use a local copy via ASVSPOOF2021_DF_ROOT")
    return md5


def resumable_downloader(url: str, output_file: str, pooch_obj: object, check_only: bool = False) -> bool | None:
    """A pooch downloader that resumes an interrupted download with an HTTP Range request."""
    if check_only:
        return bool(requests.head(url, timeout=30, allow_redirects=True).ok)
    # pooch hands us a temporary name; the partial file keeps a stable name beside it so a
    # later call can resume it
    part = Path(output_file).parent / (Path(urlparse(url).path).name + ".part")
    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    with requests.get(url, headers=headers, stream=True, timeout=60) as r:
        if r.status_code == 416:  # already complete
            pass
        elif r.status_code not in (200, 206):
            raise DownloadError(f"{url}: HTTP {r.status_code}")
        else:
            mode = "ab" if (have and r.status_code == 206) else "wb"
            total = int(r.headers.get("Content-Length", 0)) + (have if mode == "ab" else 0)
            with open(part, mode) as fh, tqdm(total=total or None, initial=have if mode == "ab" else 0,
                                              unit="B", unit_scale=True, desc=Path(url).name, leave=False) as bar:
                for chunk in r.iter_content(1 << 20):
                    fh.write(chunk)
                    bar.update(len(chunk))
    os.replace(part, output_file)
    return None


def fetch(key: str, dest: Path, base_url: str | None = None) -> Path:
    """Download (or reuse) one registry file into ``dest``, verified by MD5 before it is returned."""
    remote = REGISTRY[key]
    base_url = base_url or os.environ.get("ASVSPOOF2021_DF_BASE_URL")
    url = f"{base_url.rstrip('/')}/{remote.name}" if base_url else remote.url
    md5 = _md5_for(key, remote)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        path = pooch.retrieve(url, known_hash=f"md5:{md5}", fname=remote.name, path=dest,
                              downloader=resumable_downloader, progressbar=False)
    except ValueError as exc:  # pooch: hash mismatch (the bad file is removed by pooch)
        raise DownloadError(f"{remote.name}: {exc}") from exc
    return Path(path)


def _check_member(member: tarfile.TarInfo, dest: Path) -> None:
    """Refuse absolute names, ``..`` parts, links and devices; then apply tarfile's data filter."""
    if member.name.startswith(("/", "\\")) or ".." in Path(member.name).parts:
        raise UnsafeArchiveError(f"archive member {member.name!r} has an absolute or parent path; refused")
    if not member.isfile():
        raise UnsafeArchiveError(f"archive member {member.name!r} is not a regular file (link or device); refused")
    try:
        tarfile.data_filter(member, str(dest))
    except tarfile.FilterError as exc:
        raise UnsafeArchiveError(f"archive member {member.name!r} refused: {exc}") from exc


def read_keys_from_archive(archive: Path, dest_keys: Path) -> Path:
    """Extract the DF keys file from ``DF-keys-full.tar.gz`` (only that member) atomically."""
    if dest_keys.exists():
        return dest_keys
    with tarfile.open(archive, "r:gz") as tf:
        for m in tf:
            if m.name.lstrip("./") == KEYS_MEMBER:
                _check_member(m, dest_keys.parent)
                atomic_write(dest_keys, tf.extractfile(m).read())
                return dest_keys
    raise DownloadError(f"{archive} has no {KEYS_MEMBER}")


def list_archive_trials(archive: Path) -> list[str]:
    """Trial ids of the FLAC members of an eval part, cached next to the archive."""
    cache = Path(str(archive) + ".members.json")
    if cache.exists():
        return load_json(cache)
    trials = []
    with tarfile.open(archive, "r|gz") as tf:
        for m in tqdm(tf, desc=f"listing {archive.name}", unit="file", leave=False):
            if m.name.endswith(".flac"):
                trials.append(Path(m.name).stem)
    save_json(cache, trials)
    return trials


def extract_trials(archive: Path, trials: set[str], flac_dir: Path) -> set[str]:
    """Stream the tar and write only the wanted trials' FLACs to ``flac_dir/<trial>.flac``."""
    flac_dir.mkdir(parents=True, exist_ok=True)
    found: set[str] = set()
    with tarfile.open(archive, "r|gz") as tf:
        for m in tf:
            stem = Path(m.name).stem
            if stem not in trials or not m.name.endswith(".flac"):
                continue
            _check_member(m, flac_dir)
            target = flac_dir / f"{stem}.flac"
            found.add(stem)
            if target.exists():
                continue
            with atomic_path(target, suffix=".flac") as tmp:
                tmp.write_bytes(tf.extractfile(m).read())
    return found


def local_layout(root: Path) -> tuple[Path, Path]:
    """(keys file, flac folder) of a local copy laid out like the official archives unpack."""
    keys = root / KEYS_MEMBER
    flac = root / AUDIO_PREFIX
    for p, what in ((keys, "keys (from DF-keys-full.tar.gz)"), (flac, "audio (from the eval part archives)")):
        if not p.exists():
            raise FileNotFoundError(f"ASVSPOOF2021_DF_ROOT={root}: {p} is missing; expected the {what} "
                                    "unpacked there")
    return keys, flac


def prepare_asvspoof(out_root: Path, sample_fn, root: Path | None = None, parts: tuple[str, ...] = ("part00",),
                     download_dir: Path | None = None, base_url: str | None = None) -> Path:
    """Write the sampled trials in the common layout (keys/CM/trial_metadata.txt + flac/) under ``out_root``.

    ``sample_fn(df) -> df`` chooses the trials among those whose audio is available (a local
    copy's flac folder, or the members of the chosen parts).
    """
    keys_out, flac_out = out_root / "keys/CM/trial_metadata.txt", out_root / "flac"
    if keys_out.exists() and (out_root / "manifest.json").exists():
        return out_root
    if root is not None:
        keys_file, flac_dir = local_layout(Path(root))
        df = records_to_frame(parse_keys(keys_file))
        available = {p.stem for p in flac_dir.glob("*.flac")}
        source = f"local copy {root}"
    else:
        download_dir = Path(download_dir or out_root.parent / "downloads")
        keys_file = read_keys_from_archive(fetch("keys", download_dir, base_url), download_dir / KEYS_MEMBER)
        df = records_to_frame(parse_keys(keys_file))
        archives = [fetch(p, download_dir, base_url) for p in parts]
        available = set().union(*(list_archive_trials(a) for a in archives))
        source = f"download of {', '.join(parts)}"
    pool = df[df["trial"].isin(available)]
    if pool.empty:
        raise FileNotFoundError(f"none of the {len(df)} keyed trials has audio in the {source}")
    chosen = sample_fn(pool)
    wanted = set(chosen["trial"])
    flac_out.mkdir(parents=True, exist_ok=True)
    if root is not None:
        for t in tqdm(sorted(wanted), desc="copying sampled trials", leave=False):
            target = flac_out / f"{t}.flac"
            if not target.exists():
                with atomic_path(target, suffix=".flac") as tmp:
                    tmp.write_bytes((flac_dir / f"{t}.flac").read_bytes())
    else:
        got: set[str] = set()
        for a in archives:
            got |= extract_trials(a, wanted - got, flac_out)
        if wanted - got:
            raise DownloadError(f"{len(wanted - got)} sampled trials were not found in the archives")
    atomic_write(keys_out, format_keys(frame_to_records(chosen[list(df.columns)])))
    save_json(out_root / "manifest.json", {"dataset": "asvspoof2021_df", "source": source, "n_keyed": len(df),
                                           "n_available": len(pool), "n_sampled": len(chosen)})
    return out_root


__all__ = ["REGISTRY", "fetch", "extract_trials", "list_archive_trials", "prepare_asvspoof", "local_layout",
           "DownloadError", "UnsafeArchiveError", "read_keys_from_archive"]
