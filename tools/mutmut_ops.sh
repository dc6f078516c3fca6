#!/usr/bin/env bash
# Mutation testing of the torch paths of laser_core/ops: mutmut changes one operator, constant or
# argument at a time and runs the tests/ops tests that reach the changed function; a mutant whose
# tests still pass "survived" and points at a gap in the tests (or changes nothing).
#
#   bash tools/mutmut_ops.sh      # 12 minutes on 2 idle cores; needs .venv (make test)
#
# What is mutated and which tests run is [tool.mutmut] in pyproject.toml (the Triton files and
# branches and the Triton interpreter tests are left out). mutmut is not a project dependency:
# it goes into a throwaway venv (MUTMUT_VENV, by default under /tmp) that also sees .venv's
# packages. Each run starts from a fresh mutants/ (git-ignored); afterwards
# `$MUTMUT_VENV/bin/mutmut show NAME` prints a mutant's diff. The last line is the summary
# docs/testing.md quotes.
set -euo pipefail
cd "$(dirname "$0")/.."

version=3.8.1
tool=${MUTMUT_VENV:-${TMPDIR:-/tmp}/laser-mutmut-$version}
purelib='import sysconfig; print(sysconfig.get_paths()["purelib"])'
if [ ! -x "$tool/bin/mutmut" ]; then
  .venv/bin/python -m venv "$tool"
  "$tool/bin/python" -m pip install --quiet "mutmut==$version"
fi
echo "import site; site.addsitedir('$(.venv/bin/python -c "$purelib")')" \
  >"$("$tool/bin/python" -c "$purelib")/laser-project.pth"

rm -rf mutants
"$tool/bin/mutmut" run --max-children "$(nproc)"
"$tool/bin/mutmut" results
"$tool/bin/mutmut" export-cicd-stats >/dev/null
"$tool/bin/python" - <<'EOF'
import json

s = json.load(open("mutants/mutmut-cicd-stats.json"))
print(
    f"mutmut: {s['total']} mutants, {s['killed']} killed, {s['survived']} survived, "
    f"{s['timeout']} timeout, {s['suspicious']} suspicious, {s['no_tests']} without tests, "
    f"{s['segfault']} segfault; score killed/total {s['killed'] / s['total']:.1%}"
)
EOF
