#!/usr/bin/env bash
# One command on one H100, under 8 minutes, from a clean clone plus the wheels folder that
# tools/gpu_wheels.sh fetched: every open GPU question, in one results file gpu_check.json.
#
#   bash tools/gpu_check.sh [--wheels DIR] [--out DIR]       # default wheels: gpu-wheels/
#   bash tools/gpu_check.sh --cpu-dry-run [--only omp,vq]    # tiny shapes on the CPU (CI)
#   python3 tools/gpu_report.py gpu-check/gpu_check.json     # the tables of docs/benchmarks.md
#
# Steps (tools/gpu_measure.py says what each measures), each under its own timeout, printed
# as it goes; the timeouts add up to 555 s, under the 10 minutes one call may take.
set -uo pipefail
cd "$(dirname "$0")/.."
WHEELS=gpu-wheels OUT=gpu-check DRY="" ONLY="omp,vq,sweeps,vqgan,syncs"
while [ $# -gt 0 ]; do
  case $1 in
    --wheels) WHEELS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --cpu-dry-run) DRY=--dry-run; shift ;;
    *) echo "gpu_check.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
# the wheels first: say what is missing before anything else runs
python3 tools/gpu_wheels.py check "$WHEELS" || exit 1
SITE=$(mktemp -d)/site  # a fresh target: no LASER of an earlier run survives
rm -rf "$SITE" "$OUT" && mkdir -p "$OUT"
if compgen -G "$WHEELS/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target "$SITE" "$WHEELS"/*.whl
fi
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-build-isolation --target "$SITE" . || exit 1
if [ -n "$DRY" ]; then export TRITON_INTERPRET=1; fi
START=$SECONDS
step() {  # step NAME TIMEOUT: one gpu_measure.py section, its time and exit status logged
  local name=$1 budget=$2 began=$SECONDS status
  case ",$ONLY," in *",$name,"*) ;; *) return ;; esac
  echo "== $name: budget ${budget}s (at $((SECONDS - START))s of 480s)"
  timeout "$budget" python3 tools/gpu_measure.py "$name" $DRY --out "$OUT/$name.json" \
    > "$OUT/$name.log" 2>&1
  status=$?
  tail -3 "$OUT/$name.log"
  printf '%s\t%s\t%s\t%s\n' "$name" "$budget" "$((SECONDS - began))" "$status" >> "$OUT/steps.tsv"
  echo "== $name: exit $status after $((SECONDS - began))s"
}
python3 tools/gpu_measure.py machine $DRY --out "$OUT/machine.json"
step omp 120
step vq 75
step sweeps 60
step vqgan 180
step syncs 120
python3 tools/gpu_measure.py collect "$OUT"
echo "total $((SECONDS - START))s"
