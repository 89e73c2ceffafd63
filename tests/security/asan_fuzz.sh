#!/usr/bin/env bash
# The decoder fuzz against an AddressSanitizer build of the compiled token codec.
#
# Not part of the pytest run. Builds csrc/mlite_tokens.c and memora_lite/codecs/_tokens.pyx
# (and _rowcheck.pyx) with -fsanitize=address in a private copy of the sources under a temp
# folder (the checkout is not touched), then runs, with libasan preloaded into the interpreter:
#   1. tests/security/test_decoder_fuzz.py's mutation fuzz (MUTANTS mutants, default 200000), once
#      for each build of the token kernels' min/max loops (_tokens.builds()),
#   2. the codec and schema suites (tests/codecs, tests/schema), whose fuzz tests feed the
#      token kernels random and bit-flipped blocks and the compiled row checks random rows.
# Any heap or stack overflow, use after free or wild read in the kernels aborts with an ASan
# report. Needs gcc (or clang) with libasan, and Cython, numpy, setuptools, pytest, hypothesis.
#
#   tests/security/asan_fuzz.sh [MUTANTS]
set -euo pipefail

mutants=${1:-200000}
repo=$(cd "$(dirname "$0")/../.." && pwd)
python=${PYTHON:-python3}
libasan=$(${CC:-gcc} -print-file-name=libasan.so)
if [ ! -e "$libasan" ]; then
    echo "asan_fuzz: libasan.so not found (${CC:-gcc} -print-file-name=libasan.so said '$libasan')" >&2
    exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$repo/setup.py" "$repo/pyproject.toml" "$repo/README.md" "$repo/csrc" "$work/"
mkdir -p "$work/tests/security"
cp -r "$repo/tests/codecs" "$repo/tests/schema" "$work/tests/"
cp "$repo/tests/security/test_decoder_fuzz.py" "$work/tests/security/"
rsync -a --exclude '*.so' --exclude '__pycache__' "$repo/memora_lite" "$work/" 2>/dev/null \
    || { cp -r "$repo/memora_lite" "$work/" && find "$work/memora_lite" -name '*.so' -delete; }

echo "asan_fuzz: building with -fsanitize=address in $work"
(
    cd "$work"
    CFLAGS="-fsanitize=address -fno-omit-frame-pointer -O1 -g" LDFLAGS="-fsanitize=address" \
        "$python" setup.py -q build_ext --inplace --force >"$work/build.log" 2>&1 \
        || { cat "$work/build.log" >&2; exit 1; }
)
built=$(find "$work/memora_lite" -name '_tokens*.so')
symbols=$(nm -D "$built")
if ! grep -q __asan_ <<<"$symbols"; then
    echo "asan_fuzz: $built is not instrumented" >&2
    exit 1
fi

export LD_PRELOAD="$libasan"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:allocator_may_return_null=1:halt_on_error=1"
export PYTHONPATH="$work"
export PYTHONDONTWRITEBYTECODE=1
cd "$work"

"$python" - <<'EOF'
import memora_lite, memora_lite.codecs._tokens as t, memora_lite.codecs.backend as b
assert memora_lite.__file__.startswith(__import__("os").getcwd()), memora_lite.__file__
assert "libasan" in open("/proc/self/maps").read(), "the ASan runtime is not loaded"
print("asan_fuzz: backend", b.BACKEND, "from", t.__file__)
EOF

# A positive control: the same setup does catch a one-byte heap overflow in a C kernel.
cat >"$work/overflow.c" <<'EOF'
#include <stdlib.h>
int overflow(int n) { char *p = malloc(n); p[n] = 1; int r = p[0]; free(p); return r; }
EOF
${CC:-gcc} -shared -fPIC -fsanitize=address -g -o "$work/liboverflow.so" "$work/overflow.c"
if ASAN_OPTIONS=detect_leaks=0 "$python" -c "import ctypes, sys; ctypes.CDLL(sys.argv[1]).overflow(16)" \
        "$work/liboverflow.so" 2>"$work/control.log"; then
    echo "asan_fuzz: the positive control ran without an ASan report: ASan is not active" >&2
    exit 1
fi
grep -q "heap-buffer-overflow" "$work/control.log" || { cat "$work/control.log" >&2; exit 1; }
echo "asan_fuzz: positive control: ASan reports a heap-buffer-overflow as it should"

# Every build of the token kernels' min/max loops (baseline, and AVX2 on x86-64).
for build in $("$python" -c "import memora_lite.codecs._tokens as t; print(' '.join(t.builds()))"); do
    echo "asan_fuzz: mutation fuzz, $mutants mutants, $build build"
    "$python" tests/security/test_decoder_fuzz.py "$mutants" "$build" >"$work/fuzz.json"
    "$python" - "$work/fuzz.json" <<'EOF'
import json, sys
with open(sys.argv[1]) as f:
    r = json.loads(f.read().strip().splitlines()[-1])
bad = len(r["malformed"]) + len(r["other"]) + len(r["disagree"])
print("asan_fuzz: %d mutants, %d decoder calls: %d CodecError, %d decoded, %d malformed, %d other exceptions, "
      "%d backend disagreements" % (r["mutants"], r["calls"], r["codec_errors"], r["decoded"], len(r["malformed"]),
                                    len(r["other"]), len(r["disagree"])))
for line in (r["malformed"] + r["other"] + r["disagree"])[:5]:
    print("  ", line)
sys.exit(1 if bad else 0)
EOF
done

echo "asan_fuzz: tests/codecs and tests/schema (the compiled row checks) under ASan"
"$python" -m pytest -q -p no:cacheprovider -o addopts="" -W error tests/codecs tests/schema

echo "asan_fuzz: no AddressSanitizer report"
