#!/usr/bin/env python
"""Run every notebook headless, in order, with a parameter profile (papermill).

    python run_all.py                       # the default profile (demo)
    python run_all.py --profile smoke       # CI scale
    python run_all.py --only 02             # one notebook (also: 01-03, 00,02)
    python run_all.py -p EPOCHS 3 -p MODELS '["resnet18"]'

Executed copies go to outputs/<profile>/notebooks/, metrics to outputs/<profile>/metrics/,
figures to outputs/<profile>/figures/, and run.json records the git commit, package versions,
device, parameters and each notebook's time. A failing notebook is named with its cell, its
executed copy (with the traceback) is kept, and the exit status is non-zero.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from helpers.io import save_json
from helpers.config.params import ParameterError, check
from helpers.progress import MODE_ENV, PREFIX as PROGRESS_PREFIX
from helpers.distributed.stage_runner import STAGE_NOTEBOOKS
from helpers.paths import ROOT, notebooks_dir, profile_dir
from helpers.config.profiles import DEFAULT_NOTEBOOKS, DEFAULT_PROFILE, PROFILES, profile_params
from helpers.data.synthesis import engine_versions
from helpers.runtime import device_description, package_versions


def notebooks() -> list[Path]:
    return sorted(p for p in notebooks_dir().glob("[0-9][0-9]_*.ipynb"))


def select(paths: list[Path], only: str | None) -> list[Path]:
    if not only:
        return paths
    wanted: set[str] = set()
    for part in only.split(","):
        if "-" in part:
            a, b = part.split("-")
            wanted |= {f"{i:02d}" for i in range(int(a), int(b) + 1)}
        else:
            wanted.add(f"{int(part):02d}")
    chosen = [p for p in paths if p.name[:2] in wanted]
    if not chosen:
        raise SystemExit(f"--only {only}: no notebook matches (have {[p.name[:2] for p in paths]})")
    return chosen


REPORT = "05"   # the evaluation notebook: it summarises every stage, so it runs after any stage it follows


def run_order(chosen: list[Path], every: list[Path]) -> list[Path]:
    """The chosen notebooks in number order, except that the report (05) runs last when a later stage (06)
    runs too, and is added when a later stage runs without it: the report always includes what just ran."""
    later = [p for p in chosen if p.name[:2] > REPORT]
    if not later:
        return chosen
    report = [p for p in every if p.name[:2] == REPORT]
    return [p for p in chosen if p.name[:2] != REPORT] + report


def declared_parameters(nb: Path) -> dict:
    import papermill

    return papermill.inspect_notebook(str(nb))


def parse_overrides(pairs: list[list[str]], known: set[str]) -> dict:
    out = {}
    for name, raw in pairs:
        if name not in known:
            close = [k for k in sorted(known) if k.split("_")[0] == name.split("_")[0]]
            raise SystemExit(f"-p {name}: no notebook declares a parameter of that name"
                             + (f" (did you mean {close}?)" if close else "")
                             + f"; known parameters: {', '.join(sorted(known))}")
        out[name] = yaml.safe_load(raw)
    return out


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "unknown"


def git_changed_files() -> list[str]:
    """Tracked files that differ from the commit (a run made from them is not that commit's)."""
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout
        return [line[3:] for line in out.splitlines() if line.strip()]
    except (subprocess.CalledProcessError, FileNotFoundError):
        return []


def _cell_head(executed: Path) -> str:
    """`, starting 'first line'` of the cell that raised, found by its error output in the executed copy."""
    try:
        import nbformat

        for cell in nbformat.read(str(executed), as_version=4).cells:
            if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
                src = cell.source.strip().splitlines()
                return f", starting {src[0][:60]!r}" if src else ""
    except Exception:  # the copy may be unreadable if the kernel died; the count still names the cell
        pass
    return ""


def export_html(executed: Path, target: Path) -> None:
    """The executed 05 notebook as a reader's document: no code, no prompts, no parameter cells."""
    import nbformat
    from nbconvert import HTMLExporter

    from helpers.io import atomic_write

    nb = nbformat.read(str(executed), as_version=4)
    nb.cells = [c for c in nb.cells if not {"parameters", "injected-parameters"} & set(c.metadata.get("tags", []))]
    body, _ = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True).from_notebook_node(nb)
    atomic_write(target, body)


class CellProgress(logging.Handler):
    """Shows which cell of which notebook runs (papermill logs each cell start when ``log_output`` is on)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.notebook, self.heads = "", {}

    def start(self, nb: Path) -> None:
        import nbformat

        cells = list(nbformat.read(str(nb), as_version=4).cells)
        tagged = [i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", [])]
        if tagged:   # papermill runs its injected-parameters cell right after the tagged one
            cells.insert(tagged[0] + 1, nbformat.v4.new_code_cell("# injected parameters of the profile"))
        code = [i for i, c in enumerate(cells) if c.cell_type == "code"]
        self.notebook = nb.stem
        self.heads = {i + 1: (k + 1, len(code), _first_line(cells[i].source)) for k, i in enumerate(code)}

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if msg.startswith("Executing Cell"):
            num = int("".join(ch for ch in msg[len("Executing Cell"):] if ch.isdigit()) or 0)
            if num in self.heads:
                k, n, head = self.heads[num]
                print(f"  {self.notebook} [cell {k}/{n}] {head}", flush=True)


class ProgressLines(io.TextIOBase):
    """The kernel's stdout, filtered: only ``[progress]`` and ``WARNING:`` lines reach the terminal."""

    def __init__(self) -> None:
        self.buf = ""

    def write(self, text: str) -> int:
        self.buf += text
        *lines, self.buf = self.buf.split("\n")
        for line in lines:
            if line.startswith(PROGRESS_PREFIX):
                print("      " + line[len(PROGRESS_PREFIX):].strip(), flush=True)
            elif line.startswith("WARNING:"):
                print("      " + line, flush=True)
        return len(text)


def _first_line(src: str) -> str:
    lines = [ln for ln in src.strip().splitlines() if ln.strip() and not ln.lstrip().startswith("#")] or \
        [ln.lstrip("# ") for ln in src.strip().splitlines()[:1]]
    return (lines[0][:70] + ("..." if len(lines[0]) > 70 else "")) if lines else ""


def prepare(chosen: list[Path], params: dict, declared: dict, folder: Path) -> int:
    """``--prepare-only``: the parameterised notebooks, unexecuted, into ``folder`` (what ``make test`` hands
    nbval). A separate folder, and run.json untouched, so the executed copies and times of a real run survive."""
    import papermill

    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.ipynb"):       # only this call's notebooks: nbval runs whatever the folder holds
        old.unlink()
    for nb in chosen:
        papermill.execute_notebook(str(nb), str(folder / nb.name), prepare_only=True, kernel_name="python3",
                                   parameters={k: v for k, v in params.items() if k in declared[nb]})
    print(f"{len(chosen)} parameterised notebook(s), not executed -> {folder}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default=DEFAULT_PROFILE, help=f"one of {sorted(PROFILES)}")
    ap.add_argument("--only", help="notebook number(s): 02, 01-03, 00,02")
    ap.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                    help="override a parameter (VALUE is read as YAML: 3, 0.5, '[1, 2]', null)")
    ap.add_argument("--output-dir", help="write outputs here instead of ./outputs (sets OUTPUT_DIR)")
    ap.add_argument("--nproc", type=int, default=1,
                    help="run the heavy part of notebooks 01-04 (training, Pixle) on N processes with torchrun first "
                         "(helpers.distributed.stage_runner); the notebooks then read the caches")
    ap.add_argument("--prepare-only", action="store_true",
                    help="write the parameterised notebooks, unexecuted, to OUTPUT_DIR/PROFILE/prepared (for nbval); "
                         "run.json and the executed copies are left alone")
    args = ap.parse_args(argv)

    if args.profile not in PROFILES:
        print(f"unknown profile {args.profile!r}; choose from {sorted(PROFILES)}", file=sys.stderr)
        return 2
    if args.output_dir:
        os.environ["OUTPUT_DIR"] = str(Path(args.output_dir).resolve())
    all_nbs = notebooks()
    declared = {nb: declared_parameters(nb) for nb in all_nbs}
    known = set().union(*(d.keys() for d in declared.values()))
    unknown_profile = set(profile_params(args.profile)) - known
    if unknown_profile and not os.environ.get("RUN_ALL_SKIP_PROFILE_CHECK"):
        print(f"profile {args.profile} sets parameters no notebook declares: {sorted(unknown_profile)}", file=sys.stderr)
        return 2
    try:
        overrides = parse_overrides(args.p, known)
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 2
    params = {**profile_params(args.profile), **overrides, "PROFILE": args.profile}
    try:
        check(params)          # a misspelt choice stops the run before any work
    except ParameterError as exc:
        print(f"parameter error: {exc}", file=sys.stderr)
        return 2
    chosen = run_order(select(all_nbs, args.only or DEFAULT_NOTEBOOKS.get(args.profile)), all_nbs)

    out_dir = profile_dir(args.profile)
    if args.prepare_only:
        return prepare(chosen, params, declared, out_dir / "prepared")
    (out_dir / "notebooks").mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / "run.json"
    # notebooks not run this time keep their last entry (a --only re-run does not erase the full run's times)
    previous = {}
    if manifest_path.exists():
        try:
            previous = json.loads(manifest_path.read_text()).get("notebooks", {})
        except (json.JSONDecodeError, OSError):
            previous = {}
    manifest = {"profile": args.profile, "started": dt.datetime.now(dt.timezone.utc).isoformat(),
                "git_commit": git_commit(), "git_changed_files": git_changed_files(),
                "versions": package_versions(), "engines": (engine_versions(params.get("SPOOF_SYSTEMS") or ())
                                                                 if params.get("DATASET") == "copysynth" else {}),
                "device": device_description(),
                "parameters": params, "overrides": overrides, "notebooks": previous, "status": "running",
                "last_run": [nb.stem for nb in chosen], "nproc": args.nproc}
    save_json(manifest_path, manifest)
    import papermill
    from papermill.exceptions import PapermillExecutionError

    print(f"profile {args.profile}: {len(chosen)} notebook(s) -> {out_dir}", flush=True)
    os.environ[MODE_ENV] = "lines"            # helpers print [progress] lines instead of invisible widgets
    cells = CellProgress()
    pm_log = logging.getLogger("papermill")
    pm_log.handlers[:], pm_log.propagate = [cells], False
    pm_log.setLevel(logging.INFO)
    status = 0
    for nb in chosen:
        nb_params = {k: v for k, v in params.items() if k in declared[nb]}
        target = out_dir / "notebooks" / nb.name
        t0 = time.perf_counter()
        print(f"{nb.name}", flush=True)
        if args.nproc > 1 and nb.name[:2] in STAGE_NOTEBOOKS:
            from helpers.distributed.stage_runner import launch

            print(f"  torchrun: stage {nb.name[:2]} on {args.nproc} processes", flush=True)
            if launch(args.nproc, args.profile, nb.name[:2], args.p) != 0:
                print(f"  stage {nb.name[:2]} failed under torchrun (see above)", file=sys.stderr)
                status = 1
                break
        cells.start(nb)
        try:
            papermill.execute_notebook(str(nb), str(target), parameters=nb_params, cwd=str(nb.parent),
                                       progress_bar=False, kernel_name="python3",
                                       log_output=True, stdout_file=ProgressLines(),
                                       # the kernel's "running over TCP without encryption" notice, once per
                                       # notebook, is nothing a user can act on for a local kernel
                                       extra_arguments=["--IPKernelApp.log_level=ERROR"])
            ok, msg = True, ""
        except PapermillExecutionError as exc:
            ok = False
            msg = f"cell [{exc.exec_count}]{_cell_head(target)}: {exc.ename}: {exc.evalue}"
        seconds = time.perf_counter() - t0
        manifest["notebooks"][nb.stem] = {"seconds": round(seconds, 2), "ok": ok, "error": msg or None,
                                          "parameters": nb_params, "executed": str(target),
                                          "finished": dt.datetime.now(dt.timezone.utc).isoformat()}
        save_json(manifest_path, manifest)
        if ok:
            print(f"  {nb.name:<32} done in {seconds:.1f} s", flush=True)
            if nb.stem.startswith("05"):
                export_html(target, out_dir / "report.html")
        else:
            print(f"  {nb.name:<32} FAILED after {seconds:.1f} s in {msg}\n"
                  f"  executed copy with the traceback: {target}", file=sys.stderr, flush=True)
            status = 1
            break
    manifest["status"] = "ok" if status == 0 else "failed"
    manifest["finished"] = dt.datetime.now(dt.timezone.utc).isoformat()
    manifest["total_seconds"] = round(sum(manifest["notebooks"][n]["seconds"] for n in manifest["last_run"]
                                          if n in manifest["notebooks"]), 2)
    save_json(manifest_path, manifest)
    print(f"{'done' if status == 0 else 'failed'} in {manifest['total_seconds']:.1f} s; manifest {manifest_path}")
    skipped = [nb.name[:2] for nb in all_nbs if nb not in chosen and not args.only]
    if skipped and status == 0:
        print(f"not in the {args.profile} profile's default run: {', '.join(skipped)} "
              f"(python run_all.py --profile {args.profile} --only {','.join(skipped)})")
    return status


if __name__ == "__main__":
    sys.exit(main())
