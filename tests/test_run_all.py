"""The runner: profiles, parameter checks, --only, failures, and the smoke run end to end."""

import json
import os
import re
import shutil
import signal
import subprocess
import time
import sys
from pathlib import Path

import nbformat
import pytest

from helpers.paths import ROOT
from helpers.config.profiles import PROFILES

RUN = [sys.executable, str(ROOT / "run_all.py")]


def run(args, env=None, **kw):
    e = {**os.environ, **(env or {})}
    return subprocess.run(RUN + args, capture_output=True, text=True, env=e, cwd=ROOT, **kw)


def test_every_profile_parameter_is_declared_by_a_notebook():
    import papermill

    declared = set()
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        declared |= set(papermill.inspect_notebook(str(nb)))
    for name, params in PROFILES.items():
        assert set(params) <= declared, (name, set(params) - declared)


def test_the_report_notebook_runs_after_every_later_stage():
    sys.path.insert(0, str(ROOT))
    import run_all

    nbs = [Path(f"{i:02d}_x.ipynb") for i in range(7)]
    order = lambda chosen: [p.name[:2] for p in run_all.run_order(chosen, nbs)]  # noqa: E731
    assert order(nbs) == ["00", "01", "02", "03", "04", "06", "05"]
    assert order([nbs[6]]) == ["06", "05"]                   # --only 06 refreshes the report
    assert order(nbs[:6]) == ["00", "01", "02", "03", "04", "05"] and order([nbs[1]]) == ["01"]


def test_default_notebooks_of_a_profile_skip_what_it_does_not_measure():
    sys.path.insert(0, str(ROOT))
    import run_all
    from helpers.config.profiles import DEFAULT_NOTEBOOKS

    nbs = [Path(f"{i:02d}_x.ipynb") for i in range(9)]
    chosen = lambda profile: [p.name[:2] for p in run_all.run_order(  # noqa: E731
        run_all.select(nbs, DEFAULT_NOTEBOOKS.get(profile)), nbs)]
    assert chosen("demo") == ["00", "01", "02", "03", "04", "06", "07", "08", "05"]
    assert chosen("demo_lfcc") == ["00", "01", "02", "03", "04", "06", "08", "05"]   # no certificate on LFCC
    assert chosen("thesis_protocol") == ["00", "01", "02", "03", "04", "05"]


def test_unknown_profile_and_parameter_are_rejected():
    r = run(["--profile", "nope"])
    assert r.returncode == 2 and "unknown profile 'nope'" in r.stderr
    r = run(["--profile", "smoke", "-p", "EPOCS", "3"])
    assert r.returncode == 2 and "-p EPOCS: no notebook declares" in r.stderr


def test_failing_notebook_names_the_cell_and_exits_nonzero(tmp_path):
    nbdir = tmp_path / "nbs"
    nbdir.mkdir()
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell('PROFILE = "smoke"')
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("raise ValueError('boom')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, nbdir / "00_fail.ipynb")
    r = run(["--profile", "smoke"], env={"NOTEBOOKS_DIR": str(nbdir), "OUTPUT_DIR": str(tmp_path / "out"),
                                         "RUN_ALL_SKIP_PROFILE_CHECK": "1"}, timeout=300)
    assert r.returncode == 1
    assert "00_fail.ipynb" in r.stderr and "ValueError: boom" in r.stderr
    assert "starting \"raise ValueError('boom')\"" in r.stderr     # the failing cell, by its first line
    executed = tmp_path / "out" / "smoke" / "notebooks" / "00_fail.ipynb"
    assert executed.exists() and "boom" in executed.read_text()
    manifest = json.loads((tmp_path / "out" / "smoke" / "run.json").read_text())
    assert manifest["status"] == "failed"


def test_prepare_only_parameterises_into_its_own_folder_and_leaves_a_run_alone(tmp_path):
    prof = tmp_path / "out" / "smoke"
    (prof / "notebooks").mkdir(parents=True)
    manifest = '{"notebooks": {"01_baselines": {"seconds": 42.0}}, "status": "ok"}'
    (prof / "run.json").write_text(manifest)
    (prof / "notebooks" / "01_baselines.ipynb").write_text("executed copy")
    (prof / "prepared").mkdir()
    (prof / "prepared" / "02_pixle_attack.ipynb").write_text("an earlier call's")   # removed: nbval runs them all
    r = run(["--profile", "smoke", "--only", "01", "--prepare-only", "-p", "EPOCHS", "3"],
            env={"OUTPUT_DIR": str(tmp_path / "out")}, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (prof / "run.json").read_text() == manifest                       # a real run's times survive
    assert (prof / "notebooks" / "01_baselines.ipynb").read_text() == "executed copy"
    prepared = nbformat.read(prof / "prepared" / "01_baselines.ipynb", as_version=4)
    injected = [c for c in prepared.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "EPOCHS = 3" in injected[0].source and 'PROFILE = "smoke"' in injected[0].source
    assert not any(c.get("outputs") for c in prepared.cells if c.cell_type == "code")   # not executed
    assert [p.name[:2] for p in (prof / "prepared").glob("*.ipynb")] == ["01"]                # --only 01


@pytest.mark.slow
def test_smoke_run_end_to_end():
    """``run_all.py --profile smoke`` into OUTPUT_DIR: every notebook runs and the metrics hold numbers."""
    out = Path(os.environ["OUTPUT_DIR"])
    env = {"OUTPUT_DIR": os.environ.get("E2E_OUTPUT_DIR", str(out)), "DATA_DIR": os.environ.get("E2E_DATA_DIR", str(ROOT / "data"))}
    r = run(["--profile", "smoke"], env=env, timeout=1800)
    assert r.returncode == 0, r.stdout + r.stderr
    prof = Path(env["OUTPUT_DIR"]) / "smoke"
    manifest = json.loads((prof / "run.json").read_text())
    every = len(list((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")))     # smoke runs every notebook
    assert manifest["status"] == "ok" and len(manifest["notebooks"]) == every
    assert isinstance(manifest["git_changed_files"], list) and (len(manifest["git_commit"]) == 40 or manifest["git_commit"] == "unknown")
    assert all(v["seconds"] > 0 for v in manifest["notebooks"].values())
    for name in ("00_data", "01_baselines", "02_pixle", "03_smoothing", "04_adversarial_training", "06_realizable"):
        data = json.loads((prof / "metrics" / f"{name}.json").read_text())
        assert data["profile"] == "smoke" and data["dataset"] == "copysynth"
        assert data["protocol"]["split_by"] == "source" and data["protocol"]["bonafide_share"] == 0.5
    recs = json.loads((prof / "metrics" / "02_pixle.json").read_text())["records"]
    pix = [r for r in recs if r["condition"] == "baseline_pixle"]
    assert len(pix) == 2 and all(0 <= r["accuracy"] <= 1 and r["queries"] >= 1 for r in pix)
    report_md = (prof / "report.md").read_text()
    assert "## Does the thesis's claim hold?" in report_md and "**Verdict:**" in report_md
    html = (prof / "report.html").read_text()
    assert "Verdict" in html and "stages.run_" not in html and "PosixPath" not in html   # a reader's document
    realizable = json.loads((prof / "metrics" / "06_realizable.json").read_text())["records"]
    assert {r["evaluation"] for r in realizable} >= {"stft_pixle", "square_audio", "sparse_rs", "pixle"}
    assert len(list((prof / "figures").glob("*.png"))) >= 12
    # run.json names the spoofing engines' packages; 07 measured the k trade-off (smoke: k 45 and 100)
    assert {"flite", "espeak-ng"} <= set(manifest["engines"]) and all(manifest["engines"].values())
    sweep = json.loads((prof / "metrics" / "07_certified.json").read_text())["sweep"]
    assert [r["k"] for r in sweep] == [45, 100]
    assert sweep[0]["max_certifiable_radius"] > sweep[1]["max_certifiable_radius"] >= 0
    # nbval re-executes every notebook over a copy of this run while the resume checks below rebuild its caches
    nbval, log = start_nbval(prof, env)
    try:
        check_resumes(prof, env, realizable, every)
        try:
            rc = nbval.wait(timeout=1500)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"nbval still running after 25 min: {log.read_text()[-6000:]}") from None
    finally:
        if nbval.poll() is None:
            nbval.kill()
            nbval.wait()
    if rc and KERNEL_RACE in log.read_text():     # two kernels starting at once took the same port: once more, alone
        with open(log, "w") as fh:
            rc = subprocess.run(nbval.args, env=nbval_env(prof, env), cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT,
                                timeout=1500).returncode
    assert rc == 0, log.read_text()[-6000:]
    text = re.sub(r"\x1b\[[0-9;]*m", "", log.read_text())
    assert re.search(r"^\d+ passed\b.* in [\d.]+s", text, re.M), text[-2000:]     # "1 failed, 74 passed" does not match


def replay_copy(prof: Path, dest: Path) -> Path:
    """A copy of a finished run's profile folder for another process to replay: the checkpoints hard-linked (the
    largest files, only read, and replaced atomically when written), the rest copied; no executed notebooks."""
    def link_or_copy(src, dst):
        if str(src).endswith(".safetensors"):
            try:
                os.link(src, dst)
                return dst
            except OSError:         # another filesystem: copy
                pass
        return shutil.copy2(src, dst)

    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(prof, dest, copy_function=link_or_copy, ignore=shutil.ignore_patterns("notebooks", "prepared"))
    return dest


# jupyter_client picks a kernel's ports before binding them: two kernels starting together can take the same one
# (nbmake#129). nbval's kernels start beside the resume checks' papermill kernels, so either side is run once more
# on it.
KERNEL_RACE = "Kernel died before replying to kernel_info"


def run_once_more_on_kernel_race(args, env, **kw):
    """``run``, repeated once when a notebook's kernel lost the port race (run_all resumes from its caches);
    returns the result and whether it was repeated."""
    r = run(args, env=env, **kw)
    if r.returncode and KERNEL_RACE in r.stdout + r.stderr:
        return run(args, env=env, **kw), True
    return r, False


def nbval_env(prof: Path, env: dict) -> dict:
    return {**os.environ, **env, "OUTPUT_DIR": str(prof.parent / "nbval")}


def start_nbval(prof: Path, env: dict) -> tuple[subprocess.Popen, Path]:
    """nbval over every notebook, parameterised for the profile (``run_all.py --prepare-only``), re-executed in the
    background over a copy of the finished run (``<OUTPUT_DIR>/nbval``): its caches make it a replay of minutes,
    which the resume checks then overlap. Returns the process and its log."""
    nb_env = nbval_env(prof, env)
    out = Path(nb_env["OUTPUT_DIR"])
    replay_copy(prof, out / prof.name)
    r = run(["--profile", prof.name, "--prepare-only"], env=nb_env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    log = out / "nbval.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "pytest", "--nbval-lax", "-q", "-p", "no:cacheprovider",
                                 str(out / prof.name / "prepared")], env=nb_env, cwd=ROOT,
                                stdout=fh, stderr=subprocess.STDOUT)
    return proc, log


def check_resumes(prof: Path, env: dict, realizable: list[dict], every: int) -> None:
    """Interrupted and multi-process re-runs of the finished smoke run in ``prof`` give its metrics again."""
    # SIGKILL the attack notebook mid-run (its attack caches removed first), then resume it on 2 processes
    # (torchrun, gloo): the same metrics as the one-process run, nothing lost or doubled by the kill
    before = json.loads((prof / "metrics" / "02_pixle.json").read_text())["records"]
    bare = [f for f in (prof / "cache" / "adv").glob("*-none-*") if "baseline" in f.name]
    assert len(bare) == 2                   # both models' unblurred baseline attacks: recomputed below
    for folder in bare:
        shutil.rmtree(folder)
    p = subprocess.Popen(RUN + ["--profile", "smoke", "--only", "02"], env={**os.environ, **env}, cwd=ROOT,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    chunks = lambda arch: list((prof / "cache" / "adv").glob(f"{arch}-baseline-*-none-*/chunk_*.safetensors"))  # noqa: E731
    deadline = time.monotonic() + 600
    while not chunks("resnet18") and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGKILL)    # killed once ResNet-18's attack is cached, ResNet-50's not yet
    p.wait()
    time.sleep(2)                           # the notebook's kernel (its own session) notices its parent is gone
    assert len(chunks("resnet18")) == 1 and not chunks("resnet50"), (
        f"02 (exit code {p.returncode}) was to be killed between ResNet-18's and ResNet-50's attacks; cached: "
        f"{chunks('resnet18') + chunks('resnet50')}")
    kept = chunks("resnet18")[0], chunks("resnet18")[0].stat().st_mtime_ns
    r, _ = run_once_more_on_kernel_race(["--profile", "smoke", "--only", "02", "--nproc", "2"], env=env, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "torchrun: stage 02 on 2 processes" in r.stdout
    assert json.loads((prof / "run.json").read_text())["last_run"] == ["02_pixle_attack"]   # --only: just that one
    after = json.loads((prof / "metrics" / "02_pixle.json").read_text())["records"]
    key = lambda recs: [(x["model"], x["condition"], x["accuracy"], x.get("queries"), x["per_clip"]["pred"]) for x in recs]
    assert key(after) == key(before)
    assert all(rec["per_clip"].get("l0") == ref["per_clip"].get("l0") for rec, ref in zip(after, before))
    assert chunks("resnet18") == [kept[0]] and kept[0].stat().st_mtime_ns == kept[1]    # read back, not redone
    assert len(chunks("resnet50")) == 1
    # 06 interrupted after some attack runs: the finished ones are reused, the rest recomputed, same records
    assert "## Attacks an adversary can mount" in (prof / "report.md").read_text()   # 05 ran after 06
    run06 = json.loads((prof / "metrics" / "06_realizable.json").read_text())["key"]
    parts = sorted((prof / "cache" / "realizable" / run06).glob("*.json"))
    assert len(parts) == len([r for r in realizable if r["evaluation"] != "pixle"]) >= 6
    for part in parts[::8]:                 # every eighth recomputed (3 of 24 in smoke), the rest read back
        part.unlink()
    (prof / "metrics" / "06_realizable.json").unlink()
    r, again = run_once_more_on_kernel_race(["--profile", "smoke", "--only", "06"], env=env, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    reused = r.stdout.count("reused cache/realizable/") + r.stderr.count("reused cache/realizable/")
    assert reused == len(parts) - len(parts[::8]) or (again and reused >= len(parts) - len(parts[::8]))
    # --only runs just that notebook (and the report after it), reusing the caches; run.json keeps the others
    manifest = json.loads((prof / "run.json").read_text())
    assert manifest["last_run"] == ["06_realizable_attacks", "05_evaluation"] and len(manifest["notebooks"]) == every
    resumed = json.loads((prof / "metrics" / "06_realizable.json").read_text())["records"]
    key06 = lambda recs: [(x["model"], x["condition"], x["evaluation"], x["accuracy"], x["per_clip"]["pred"]) for x in recs]
    assert key06(resumed) == key06(realizable)
