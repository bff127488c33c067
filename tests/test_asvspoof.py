"""The real-corpus path against a download server on 127.0.0.1 and a miniature official layout."""

import hashlib
import io
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import soundfile as sf

from helpers.data import asvspoof as A
from helpers.data import corpus as C
from tests.conftest import speechlike

KEY_LINES = [
    "LA_0023 DF_E_2000011 nocodec asvspoof A14 spoof notrim progress traditional_vocoder - - - -",
    "LA_0043 DF_E_2000026 mp3m4a asvspoof A09 spoof notrim eval traditional_vocoder - - - -",
    "VCC2TM2 DF_E_2000053 mp3m4a vcc2018 - bonafide notrim eval bonafide - - - -",
    "LA_0048 DF_E_2000058 mp3m4a asvspoof - bonafide notrim eval bonafide - - - -",
    "TEM2 DF_E_2000072 high_ogg vcc2020 Task1-team11 spoof notrim eval neural_vocoder_autoregressive Task1 team11 MM E",
    "TEM2 DF_E_2000079 high_m4a vcc2020 - bonafide notrim eval bonafide - - - -",
]


def _flac_bytes(seed):
    buf = io.BytesIO()
    sf.write(buf, speechlike(1.0, seed=seed), 16000, format="FLAC")
    return buf.getvalue()


def _add(tf, name, data, **kw):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for k, v in kw.items():
        setattr(info, k, v)
    tf.addfile(info, io.BytesIO(data))


def make_archives(folder: Path, hostile: str | None = None) -> dict[str, bytes]:
    keys = io.BytesIO()
    with tarfile.open(fileobj=keys, mode="w:gz") as tf:
        _add(tf, "keys/DF/CM/trial_metadata.txt", ("\n".join(KEY_LINES) + "\n").encode())
    part = io.BytesIO()
    with tarfile.open(fileobj=part, mode="w:gz") as tf:
        _add(tf, "ASVspoof2021_DF_eval/README.DF.txt", b"readme")
        for i, line in enumerate(KEY_LINES[:5]):     # the last trial lives in another part
            _add(tf, f"ASVspoof2021_DF_eval/flac/{line.split()[1]}.flac", _flac_bytes(i))
        if hostile:
            _add(tf, hostile, _flac_bytes(9))
    files = {"DF-keys-full.tar.gz": keys.getvalue(), "ASVspoof2021_DF_eval_part00.tar.gz": part.getvalue()}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return files


class RangeServer:
    """Serves files from a dict on 127.0.0.1 with HTTP Range support; records the requests."""

    def __init__(self, files):
        self.files, self.requests = files, []
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                outer.requests.append((name, self.headers.get("Range")))
                data = outer.files.get(name)
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                rng = self.headers.get("Range")
                if rng:
                    start = int(rng.split("=")[1].split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                self.wfile.write(data[start:])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


@pytest.fixture
def server(tmp_path, monkeypatch):
    src = tmp_path / "served"
    src.mkdir()
    files = make_archives(src)
    srv = RangeServer(files)
    monkeypatch.setenv("ASVSPOOF2021_DF_MD5_KEYS", hashlib.md5(files["DF-keys-full.tar.gz"]).hexdigest())
    monkeypatch.setenv("ASVSPOOF2021_DF_MD5_PART00", hashlib.md5(files["ASVspoof2021_DF_eval_part00.tar.gz"]).hexdigest())
    yield srv
    srv.close()


def test_official_urls_and_keys_checksum():
    assert A.REGISTRY["keys"].md5 == "dabbc5628de4fcef53036c99ac7ab93a"
    assert A.REGISTRY["part00"].url == "https://zenodo.org/records/4835108/files/ASVspoof2021_DF_eval_part00.tar.gz"
    assert A.REGISTRY["part03"].name == "ASVspoof2021_DF_eval_part03.tar.gz"


def test_download_verifies_hash_and_resumes(server, tmp_path, monkeypatch):
    dest = tmp_path / "dl"
    dest.mkdir()
    data = server.files["ASVspoof2021_DF_eval_part00.tar.gz"]
    (dest / "ASVspoof2021_DF_eval_part00.tar.gz.part").write_bytes(data[: len(data) // 2])   # an interrupted download
    path = A.fetch("part00", dest, server.url)
    assert path.read_bytes() == data
    assert ("ASVspoof2021_DF_eval_part00.tar.gz", f"bytes={len(data) // 2}-") in server.requests
    n = len(server.requests)
    assert A.fetch("part00", dest, server.url) == path and len(server.requests) == n    # cached, not re-fetched
    monkeypatch.setenv("ASVSPOOF2021_DF_MD5_KEYS", "0" * 32)
    with pytest.raises(A.DownloadError, match="DF-keys-full.tar.gz"):
        A.fetch("keys", tmp_path / "dl2", server.url)
    assert not (tmp_path / "dl2" / "DF-keys-full.tar.gz").exists()


def test_unknown_part_hash_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("ASVSPOOF2021_DF_MD5_PART01", raising=False)
    with pytest.raises(A.DownloadError, match="ASVSPOOF2021_DF_MD5_PART01"):
        A.fetch("part01", tmp_path, "http://127.0.0.1:9")


def test_prepare_from_download_extracts_only_sampled_trials(server, tmp_path):
    out = tmp_path / "corpus"
    root = A.prepare_asvspoof(out, lambda df: C.sample_trials(df, 4, 0.5, seed=0), base_url=server.url,
                              download_dir=tmp_path / "dl")
    df, skipped = C.load_corpus(C.CorpusLayout(root / "keys/CM/trial_metadata.txt", root / "flac"))
    assert len(df) == 4 and (df["label"] == "bonafide").sum() == 2
    assert sorted(p.stem for p in (root / "flac").glob("*.flac")) == sorted(df["trial"])
    assert "DF_E_2000079" not in set(df["trial"])       # keyed but not in the downloaded part


@pytest.mark.parametrize("hostile", ["/abs/DF_E_2000011.flac", "../../DF_E_2000011.flac"])
def test_hostile_member_is_refused(tmp_path, hostile):
    src = tmp_path / "src"
    src.mkdir()
    make_archives(src, hostile=hostile)
    with pytest.raises(A.UnsafeArchiveError, match="absolute or parent path"):
        # the hostile member carries a wanted trial id, so it would be extracted if not refused
        A.extract_trials(src / "ASVspoof2021_DF_eval_part00.tar.gz", {"DF_E_2000011"}, tmp_path / "out")
    assert not any((tmp_path).rglob("abs"))


def test_link_member_is_refused(tmp_path):
    part = tmp_path / "p.tar.gz"
    with tarfile.open(part, "w:gz") as tf:
        info = tarfile.TarInfo("ASVspoof2021_DF_eval/flac/DF_E_1.flac")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tf.addfile(info)
    with pytest.raises(A.UnsafeArchiveError, match="not a regular file"):
        A.extract_trials(part, {"DF_E_1"}, tmp_path / "out")
    assert not (tmp_path / "out" / "DF_E_1.flac").exists()


def test_local_copy_in_official_layout(tmp_path):
    root = tmp_path / "ASVspoof2021_DF"
    (root / "keys/DF/CM").mkdir(parents=True)
    (root / "keys/DF/CM/trial_metadata.txt").write_text("\n".join(KEY_LINES) + "\n")
    flac = root / "ASVspoof2021_DF_eval/flac"
    flac.mkdir(parents=True)
    for i, line in enumerate(KEY_LINES):
        (flac / f"{line.split()[1]}.flac").write_bytes(_flac_bytes(i))
    before = {p.name: p.read_bytes() for p in flac.iterdir()}
    out = A.prepare_asvspoof(tmp_path / "corpus", lambda df: C.sample_trials(df, 6, 0.5, seed=0), root=root)
    df, _ = C.load_corpus(C.CorpusLayout(out / "keys/CM/trial_metadata.txt", out / "flac"))
    assert len(df) == 6 and set(df["label"]) == {"bonafide", "spoof"}
    assert {p.name: p.read_bytes() for p in flac.iterdir()} == before        # the local copy is untouched
    with pytest.raises(FileNotFoundError, match="keys/DF/CM/trial_metadata.txt is missing"):
        A.local_layout(tmp_path / "nothing")
