#!/usr/bin/env bash
# Run tide's CUDA tests (and the CPU suite) on a GPU machine that has the
# NVIDIA driver and the CUDA 13 libraries (cuBLAS) but not our Debian
# packages.
#
# Here (the build machine), with a build that has CUDA (cmake's default
# TIDE_CUDA=AUTO finds /usr/local/cuda):
#
#   scripts/gpu/run.sh --pack-only [BUILD]   # writes tide-gpu-pack.tar.xz, lists it
#
# There (the GPU machine), after copying the archive over:
#
#   tar xJf tide-gpu-pack.tar.xz && tide-gpu-pack/run-tests.sh
#
# or both in one go with ssh: scripts/gpu/run.sh --ssh HOST [BUILD].
#
# run-tests.sh runs every tests/cuda program, then the GPU benchmarks
# (scripts/bench/gpu_losses.lua, gpu_train.lua; TIDE_GPU_BENCH=0 skips
# them), then the CPU suite. cuDNN 9 (libcudnn.so.9 and its sub-libraries,
# about 500 MB) is not packed either: conv2d opens it from the GPU
# machine's library path, and tests/cuda/test_cuda_conv fails without it.
# NCCL (libnccl.so.2) is not packed either: tide.distributed opens it at
# run time. Where the system has none of these, run-tests.sh takes them
# from PyTorch's pip wheels (python3's site-packages/nvidia/*/lib).
#
# The pack holds the built `tide` and test programs, the Lua files (tide's
# own, the specs, reference data, busted and its modules), and every shared
# library they load that a bare machine may lack (Lua, oneDNN, OpenBLAS,
# jansson, libedit, libgomp, ...), xz-compressed; run-tests.sh points
# LD_LIBRARY_PATH at them. cuBLAS, cudart's driver (libcuda) and glibc are
# not packed: they come from the GPU machine (cuBLAS 13 must be on its
# library path, e.g. /usr/local/cuda/lib64). The pack must stay under
# 64 MiB; the script fails if it does not.
#
# On the GPU machine a skipped CUDA test is a failure: it means the GPU
# was not usable there, and the run proved nothing.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
mode=run
host=""
case "${1:-}" in
--pack-only) mode=pack; shift ;;
--ssh) mode=ssh; host="${2:?--ssh needs a host}"; shift 2 ;;
-h | --help) sed -n '2,36p' "${BASH_SOURCE[0]}"; exit 0 ;;
esac
build="$(cd "${1:-$root/build}" && pwd)"
limit=$((64 << 20))

[ -x "$build/tide" ] || { echo "no $build/tide: build first (make build)" >&2; exit 1; }
[ -x "$build/tests/test_cuda" ] || {
    echo "no $build/tests/test_cuda: this build has no CUDA backend (is nvcc found? see docs/cuda.md)" >&2
    exit 1
}

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
pack="$stage/tide-gpu-pack"
mkdir -p "$pack/bin/tests" "$pack/lib" "$pack/lua/share" "$pack/lua/lib" "$pack/src"

# programs
cp "$build/tide" "$pack/bin/"
for t in "$build"/tests/test_*; do
    [ -x "$t" ] && [ -f "$t" ] && cp "$t" "$pack/bin/tests/"
done

# shared libraries, except the ones the GPU machine provides: glibc's own,
# the CUDA driver and libraries (they must match the machine's driver)
skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libpthread|libdl\.so|librt\.so|libcuda|libcublas|libcudart|libnvidia)'
for exe in "$pack"/bin/tide "$pack"/bin/tests/*; do
    ldd "$exe" | awk '$3 ~ /^\// {print $1, $3}'
done | sort -u | while read -r name path; do
    if ! [[ "$name" =~ $skip ]]; then cp -L "$path" "$pack/lib/$name"; fi
done

# Lua: tide's files, the specs and their data, busted with its modules
cp -r "$root/bindings/tide" "$pack/src/tide"
cp -r "$root/models" "$pack/src/models"
mkdir -p "$pack/src/tests"
cp -r "$root/tests/lua" "$root/tests/cuda" "$root/tests/reference" "$pack/src/tests/"
cp -r "$root/scripts" "$pack/src/scripts" 2>/dev/null || true
cp -rL /usr/share/lua/5.4/. "$pack/lua/share/" 2>/dev/null || true
cp -rL /usr/lib/x86_64-linux-gnu/lua/5.4/. "$pack/lua/lib/" 2>/dev/null || true
cp "$(command -v busted)" "$pack/bin/busted" 2>/dev/null || echo "note: busted not found, the Lua specs will not run there" >&2

cat > "$pack/run-tests.sh" <<'EOF'
#!/usr/bin/env bash
# Runs on the GPU machine: the CUDA tests first, the GPU benchmarks, then the CPU suite.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export LD_LIBRARY_PATH="$here/lib:${CUDA_HOME:-/usr/local/cuda}/lib64:${LD_LIBRARY_PATH:-}"
export TIDE_PATH="$here/src/?.lua;$here/src/?/init.lua;$here/src/models/?.lua"
export LUA_PATH="$here/lua/share/?.lua;$here/lua/share/?/init.lua;;"
export LUA_CPATH="$here/lua/lib/?.so;;"
export CK_FORK=no
# the CUDA libraries the system lacks, from PyTorch's pip wheels where this
# machine has them (site-packages/nvidia/<name>/lib): NCCL (dlopen'ed by
# tide.distributed), cuBLAS, cuDNN, cudart
has_lib() { # name: on the loader's cache or in a folder of LD_LIBRARY_PATH
    grep -q " $1 " <(ldconfig -p 2> /dev/null) && return 0
    local d; IFS=: read -ra dirs <<< "$LD_LIBRARY_PATH"
    for d in "${dirs[@]}"; do [ -n "$d" ] && [ -e "$d/$1" ] && return 0; done
    return 1
}
site="$(python3 -c 'import nvidia, os; print(os.path.dirname(nvidia.__path__[0]))' 2> /dev/null || true)"
if [ -n "$site" ]; then
    for lib in libnccl.so.2 libcublas.so.13 libcublasLt.so.13 libcudnn.so.9 libcudart.so.13; do
        has_lib "$lib" && continue
        for f in "$site"/nvidia/*/lib/"$lib"; do
            [ -e "$f" ] && { LD_LIBRARY_PATH="${LD_LIBRARY_PATH%:}:$(dirname "$f")"; echo "using $f"; break; }
        done
    done
fi
cd "$here/src"
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
fails=0
run() { # name, command...
    local name="$1"; shift
    local t0=$SECONDS
    "$@" > "$here/log-$name.txt" 2>&1
    local rc=$?
    if [ $rc -eq 0 ]; then echo "PASS  $name ($((SECONDS - t0)) s)";
    elif [ $rc -eq 77 ]; then echo "SKIP  $name: $(tail -1 "$here/log-$name.txt") (a failure here: no usable GPU)"; fails=$((fails + 1));
    else echo "FAIL  $name (exit $rc), log: $here/log-$name.txt"; tail -20 "$here/log-$name.txt"; fails=$((fails + 1)); fi
}
run cuda.parity "$here/bin/tests/test_cuda"
for t in "$here"/bin/tests/test_cuda_*; do
    [ -x "$t" ] && run "cuda.$(basename "$t" | sed 's/^test_cuda_//')" "$t"
done
# tide.distributed on NCCL, one rank (libnccl.so.2 from the library path)
run cuda.nccl "$here/bin/tide" tests/cuda/nccl.lua
# the GPU benchmarks (scripts/bench/gpu_*.lua; PyTorch's side where this
# machine's /usr/bin/python3 has torch, else tide's numbers alone);
# TIDE_GPU_BENCH=0 leaves them out
if [ "${TIDE_GPU_BENCH:-1}" != 0 ]; then
    for b in gpu_losses gpu_train; do
        echo "== bench $b"
        t0=$SECONDS
        if "$here/bin/tide" "scripts/bench/$b.lua" 2>&1 | tee "$here/log-bench-$b.txt"; then
            echo "PASS  bench.$b ($((SECONDS - t0)) s)"
        else
            echo "FAIL  bench.$b, log: $here/log-bench-$b.txt"; fails=$((fails + 1))
        fi
    done
fi
for t in "$here"/bin/tests/test_*; do
    n="$(basename "$t")"
    case "$n" in test_cuda | test_cuda_*) ;; *) run "c.$n" "$t" ;; esac
done
if [ -f "$here/bin/busted" ]; then
    for spec in tests/cuda/*_spec.lua tests/lua/*_spec.lua; do
        run "lua.$(basename "$spec" .lua)" "$here/bin/tide" "$here/bin/busted" --output=TAP "$spec"
    done
fi
echo "== $fails failed"
exit $((fails > 0))
EOF
chmod +x "$pack/run-tests.sh"

archive="$stage/tide-gpu-pack.tar.xz"
tar -C "$stage" -cf - tide-gpu-pack | xz -T0 -6 > "$archive"
size=$(stat -c %s "$archive")
echo "== pack contents (uncompressed)"
(cd "$stage" && du -sh tide-gpu-pack/bin tide-gpu-pack/lib tide-gpu-pack/src tide-gpu-pack/lua)
ls -1 "$pack/lib" | sed 's/^/  lib: /'
echo "== tide-gpu-pack.tar.xz: $((size / 1024)) KiB (limit $((limit >> 20)) MiB)"
if [ "$size" -ge "$limit" ]; then
    echo "the pack is over the limit" >&2
    exit 1
fi

case "$mode" in
pack)
    cp "$archive" "$root/tide-gpu-pack.tar.xz"
    echo "wrote $root/tide-gpu-pack.tar.xz"
    ;;
ssh)
    scp "$archive" "$host:tide-gpu-pack.tar.xz"
    ssh "$host" 'rm -rf tide-gpu-pack && tar xJf tide-gpu-pack.tar.xz && tide-gpu-pack/run-tests.sh'
    ;;
run) # this machine has the GPU: unpack beside the build and run
    dest="$build/gpu-run"
    rm -rf "$dest" && mkdir -p "$dest"
    tar -C "$dest" -xJf "$archive"
    "$dest/tide-gpu-pack/run-tests.sh"
    ;;
esac
