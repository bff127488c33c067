#!/usr/bin/env bash
# Every GPU measurement in one run, every figure in one file (target: under 8 minutes on one H100).
#
#   bash benchmarks/gpu_suite.sh                      # -> $OUT/gpu_suite.txt (or build/gpu_suite.txt)
#   bash benchmarks/gpu_suite.sh results.txt          # -> results.txt
#   bash benchmarks/gpu_suite.sh --device cpu --tiny  # smoke mode: tiny model and sizes, seconds on a CPU
#
# Steps (each under its own time limit, all within SUITE_BUDGET_S, default 450 s; a failed or
# timed-out step is recorded and the next one runs):
#   1. the `thesis` profile end to end at reduced data (run_all.py: 16 sources, 64 trials, the
#      thesis's epochs, Pixle 10x50 and adversarial training from scratch), with its timings;
#      1b. notebook 07 (certified robustness by ablation, k=75, n=10,000) on the same data, 4 clips attacked;
#   2. batched Pixle vs torchattacks.Pixle at the thesis budget (10x50) on ResNet-18 and ResNet-50,
#      reduced clip count (benchmarks/pixle_speed.py), on the detectors step 1 trained;
#   3. forward throughput by batch size, feature extraction, adversarial training (benchmarks/throughput.py);
#   4. bfloat16 tolerance (benchmarks/amp_tolerance.py);
#   5. 1-vs-N-process scaling of sharded Pixle (benchmarks/scaling.py) when nvidia-smi shows several GPUs.
# --tiny swaps the detectors for a tiny random CNN on 16x16 images, cuts feature clips to 0.25 s,
# shrinks every budget and skips step 1 (copy-synthesis alone takes minutes on a CPU); it checks
# the plumbing, not the numbers.
# Without SPEECH_DIR (and without the cached Asterisk prompts), step 1 uses generated speech-like
# audio (tests/conftest.speechlike): the GPU machines have no network to fetch real speech.
set -u
cd "$(dirname "$0")/.."

DEVICE=""
TINY=0
OUTFILE=""
while [ $# -gt 0 ]; do
    case "$1" in
        --device) DEVICE="$2"; shift 2 ;;
        --tiny) TINY=1; shift ;;
        --out) OUTFILE="$2"; shift 2 ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) OUTFILE="$1"; shift ;;
    esac
done
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
[ -n "$DEVICE" ] || DEVICE=$($PYTHON -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
[ -n "$OUTFILE" ] || OUTFILE="${OUT:-build}/gpu_suite.txt"
mkdir -p "$(dirname "$OUTFILE")"
: > "$OUTFILE"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_suite.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
BUDGET=${SUITE_BUDGET_S:-450}
START=$SECONDS
export DEVICE OUTPUT_DIR="$WORK/outputs" PYTHONWARNINGS=ignore TQDM_DISABLE=1
NGPU=0
if command -v nvidia-smi > /dev/null 2>&1; then NGPU=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true); fi

log() { echo "$@" | tee -a "$OUTFILE"; }
SUMMARY=""
# step NAME LIMIT_S COMMAND...: run with a time limit (capped by what is left of the budget)
step() {
    local name="$1" limit="$2"; shift 2
    local left=$((BUDGET - (SECONDS - START)))
    [ "$limit" -le "$left" ] || limit=$left
    log ""
    log "=== $name (limit ${limit}s) ==="
    log "\$ $*"
    if [ "$limit" -lt 5 ]; then
        log "skipped: suite budget (${BUDGET}s) spent"; SUMMARY+=$(printf '\n%-44s %8s %6s' "$name" "skipped" "-"); return
    fi
    local t0=$SECONDS rc=0
    timeout --kill-after=10 "$limit" "$@" >> "$OUTFILE" 2>&1 || rc=$?
    local dt=$((SECONDS - t0)) status=ok
    [ $rc -eq 0 ] || status="exit $rc"
    [ $rc -ne 124 ] || status="timeout"
    log "--- $name: $status, ${dt}s"
    SUMMARY+=$(printf '\n%-44s %8s %6ss' "$name" "$status" "$dt")
}

# Run a benchmark script with the detector chosen by SUITE_MODEL: "tiny" (random tiny CNN, smoke
# mode) or "profile:NAME" (that profile's trained baselines, else a seeded random initialisation).
cat > "$WORK/with_model.py" <<'EOF'
import os, runpy, sys
import torch
from torch import nn
sys.path.insert(0, "benchmarks")
import common  # noqa: E402
import helpers.models.detectors as models  # noqa: E402
import helpers.models.training as training  # noqa: E402
from helpers.models.detectors import predict  # noqa: E402
mode = os.environ.get("SUITE_MODEL", "tiny")

class Tiny(nn.Module):
    def __init__(self, in_channels=3, seed=0):
        super().__init__()
        torch.manual_seed(seed or 0)
        self.conv, self.head = nn.Conv2d(in_channels, 8, 3, padding=1), nn.Linear(8, 2)
    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).mean((2, 3)))

def random_set(model, device, size, n=32):
    x = torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0))
    model = model.to(device).eval()
    return model, x, predict(model, x, device=device).argmax(1)

if mode == "tiny":
    import helpers.data.features as features
    models.build_model = training.build_model = lambda arch, in_channels=3, seed=None, stem="cifar": Tiny(in_channels, seed)
    _extract = features.extract   # clips cut to 0.25 s: the plumbing runs, in a tenth of the time
    features.extract = lambda wav, cfg, device="cpu": _extract(wav[:4000], cfg, device)
    def trained_detector(arch="resnet18", profile="demo", device="cpu"):
        return (*random_set(Tiny(), device, 16), "tiny random CNN, 32 random 16x16 images (smoke mode)")
else:
    profile = mode.split(":", 1)[1]
    original = common.trained_detector
    def trained_detector(arch="resnet18", _profile="demo", device="cpu"):
        from helpers.experiments.pipeline import load_metrics
        if load_metrics(profile, "01_baselines"):
            model, x, y, where = original(arch, profile, device)
            if "profile baseline" in where:
                return model, x, y, where
        return (*random_set(models.build_model(arch, 3, seed=0), device, 32),
                f"{arch} random initialisation, 32 random images labelled by it (no {profile} baseline found)")
common.trained_detector = trained_detector
script = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(script, run_name="__main__")
EOF

log "gpu_suite: $(date -u +%Y-%m-%dT%H:%M:%SZ); commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown); device $DEVICE; tiny=$TINY"
$PYTHON -c "import torch, platform; print('python', platform.python_version(), '| torch', torch.__version__, '| cuda', torch.version.cuda, '| threads', torch.get_num_threads())" >> "$OUTFILE" 2>&1
[ "$NGPU" -eq 0 ] || nvidia-smi -L >> "$OUTFILE" 2>&1
REF=""
$PYTHON -c "import torchattacks" > /dev/null 2>&1 || { REF="--skip-reference"; log "torchattacks not installed: batched Pixle only"; }

if [ "$TINY" -eq 1 ]; then
    export SUITE_MODEL=tiny
    log ""
    log "=== thesis profile end to end: skipped in --tiny (copy-synthesis alone takes minutes on a CPU) ==="
    log "--tiny: every detector below is a tiny random CNN and feature clips are cut to 0.25 s;"
    log "        the numbers check the plumbing, they are not measurements"
    step "pixle_speed tiny" 60 $PYTHON "$WORK/with_model.py" benchmarks/pixle_speed.py --device "$DEVICE" --n 4 --restarts 1 --iterations 5 $REF
    step "throughput tiny" 90 $PYTHON "$WORK/with_model.py" benchmarks/throughput.py --device "$DEVICE"
    step "amp_tolerance tiny" 60 $PYTHON "$WORK/with_model.py" benchmarks/amp_tolerance.py --device "$DEVICE" --n 4 --restarts 1 --iterations 5
    if [ "$NGPU" -gt 1 ] || [ "${SUITE_SCALING:-0}" = 1 ]; then
        NP=$([ "$NGPU" -gt 1 ] && echo "$NGPU" || echo 2)
        step "scaling tiny 1 vs $NP" 90 $PYTHON benchmarks/scaling.py --device "$DEVICE" --nproc 1 "$NP" --model tests.toys:RegionModel --n 16 --size 16 --restarts 1 --iterations 5 --shard-size 4
    fi
else
    export SUITE_MODEL=profile:thesis
    if [ -z "${SPEECH_DIR:-}" ] && [ ! -e "${DATA_DIR:-data}/raw/asterisk/.complete" ]; then
        export SPEECH_DIR="$WORK/speech"
        $PYTHON - <<'EOF' >> "$OUTFILE" 2>&1
import os
from pathlib import Path
import soundfile as sf
from tests.conftest import speechlike
d = Path(os.environ["SPEECH_DIR"]); d.mkdir(parents=True, exist_ok=True)
for i in range(24):
    sf.write(d / f"synthetic_{i:02d}.wav", speechlike(3.0 + 0.25 * (i % 5), 16000, 95 + 7 * i, seed=i), 16000)
print(f"bonafide speech: 24 generated speech-like clips in {d} (no SPEECH_DIR, no cached Asterisk prompts)")
EOF
    fi
    export DATA_DIR="${DATA_DIR:-$WORK/data}"
    # 1. thesis profile, reduced data (everything else at the thesis's settings)
    step "thesis profile, 16 sources / 64 trials" 200 $PYTHON run_all.py --profile thesis --output-dir "$OUTPUT_DIR" \
        --only 00-06 -p MAX_SOURCES 16 -p N_TRIALS 64 -p SPLIT '[0.5, 0.2, 0.3]' -p N_BOOT 200
    # 1b. certified robustness (07) at the thesis's k=75, n=10,000 on those detectors' clips; adaptive attacks on 4
    step "certified (07), thesis k/n, 4 clips attacked" 120 $PYTHON run_all.py --profile thesis --output-dir "$OUTPUT_DIR" \
        --only 07 -p MAX_SOURCES 16 -p N_TRIALS 64 -p SPLIT '[0.5, 0.2, 0.3]' -p CERT_ATTACK_CLIPS 4
    [ ! -f "$OUTPUT_DIR/thesis/run.json" ] || $PYTHON -c "
import json, sys
d = json.load(open(sys.argv[1]))
print('thesis run:', d.get('status'), '| device', d.get('device'))
for k, v in d.get('notebooks', {}).items(): print(f'  {k:<28} {v[\"seconds\"]:8.1f} s')
print(f'  total {sum(v[\"seconds\"] for v in d.get(\"notebooks\", {}).values()):.1f} s')" "$OUTPUT_DIR/thesis/run.json" | tee -a "$OUTFILE"
    # 2. batched Pixle vs torchattacks at the thesis budget
    step "pixle_speed resnet18 10x50" 90 $PYTHON "$WORK/with_model.py" benchmarks/pixle_speed.py --device "$DEVICE" --arch resnet18 --n 16 --restarts 10 --iterations 50 $REF
    step "pixle_speed resnet50 10x50" 120 $PYTHON "$WORK/with_model.py" benchmarks/pixle_speed.py --device "$DEVICE" --arch resnet50 --n 12 --restarts 10 --iterations 50 $REF
    # 3. throughput; 4. bfloat16 tolerance
    step "throughput" 90 $PYTHON benchmarks/throughput.py --device "$DEVICE"
    step "amp_tolerance resnet18 10x50" 60 $PYTHON "$WORK/with_model.py" benchmarks/amp_tolerance.py --device "$DEVICE" --arch resnet18 --n 64 --restarts 10 --iterations 50
    step "amp_tolerance resnet50 10x50" 60 $PYTHON "$WORK/with_model.py" benchmarks/amp_tolerance.py --device "$DEVICE" --arch resnet50 --n 64 --restarts 10 --iterations 50
    # 5. scaling over GPUs
    if [ "$NGPU" -gt 1 ]; then
        step "scaling 1 vs $NGPU GPUs" 120 $PYTHON benchmarks/scaling.py --device cuda --nproc 1 "$NGPU" --arch resnet18 --n 512 --restarts 10 --iterations 50 --shard-size 64
    else
        log ""
        log "=== scaling: skipped ($NGPU GPU(s); needs several) ==="
    fi
fi

log ""
log "=== summary ($((SECONDS - START)) s of ${BUDGET} s budget) ===$SUMMARY"
echo "figures written to $OUTFILE"
case "$SUMMARY" in *exit*|*timeout*) exit 1 ;; esac
exit 0
