#!/usr/bin/env bash
# A CUDA toolchain for `cargo build --features cuda` on a machine without a system CUDA, from PyPI
# wheels, in a venv OUTSIDE the repository. Run by hand, never by CI.
#
#   scripts/cuda_toolchain.sh [VENV [CUDA]]   # defaults: ../cuda-venv next to the repository, 13.4
#   source VENV/cuda-env.sh
#   CARGO_TARGET_DIR=../target-cuda cargo build --release -p infoplane-cli --features cuda
#
# Why CUDA 13.4: the cu12 nvcc wheels (nvidia-cuda-nvcc-cu12 12.x) hold only ptxas and libnvvm, no
# nvcc; the CUDA 13 wheels hold the whole compiler. 13.4 is the newest release cudarc 0.19 knows.
# candle's kernels are PTX that the driver compiles when they load, and a driver reads PTX only up
# to its own CUDA version (`nvidia-smi` shows it): pass that version (13.0 … 13.4) as CUDA when the
# driver is older than 13.4.
# No wheel ships the driver's libcuda.so, which the binary links against (candle builds cudarc
# with `dynamic-linking`), so this makes a link-time stand-in exporting every driver entry point
# cudarc can call, each returning CUDA_ERROR_STUB_LIBRARY; at run time the real driver's
# libcuda.so.1 is loaded instead. Keep lib/stubs off LD_LIBRARY_PATH on a GPU machine.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
venv=$(realpath -m "${1:-$repo/../cuda-venv}")
cuda=${2:-13.4}

python3 -m venv "$venv"
"$venv/bin/pip" install --quiet "nvidia-cuda-nvcc==$cuda.*" "nvidia-cuda-crt==$cuda.*" "nvidia-nvvm==$cuda.*" \
    "nvidia-cuda-runtime==$cuda.*" "nvidia-cuda-nvrtc==$cuda.*" nvidia-cuda-cccl nvidia-cublas nvidia-curand
root=$(echo "$venv"/lib/python3*/site-packages/nvidia/cu13)
test -x "$root/bin/nvcc" || { echo "no nvcc under $root" >&2; exit 1; }

# The linker wants unversioned names (-lcudart, -lcublas, …); the wheels ship only lib*.so.N.
for lib in "$root"/lib/lib*.so.*; do
    ln -sf "$(basename "$lib")" "${lib%%.so.*}.so"
done

# The stand-in libcuda: driver functions named by cudarc's bindings (every CUDA version it knows).
(cd "$repo" && cargo fetch --quiet)
ver=$(grep -A1 '^name = "cudarc"$' "$repo/Cargo.lock" | sed -n 's/^version = "\(.*\)"/\1/p')
sys=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"cudarc-$ver"/src/driver/sys/mod.rs | head -n1)
mkdir -p "$root/lib/stubs"
sed -n 's/^pub unsafe fn \(cu[A-Za-z0-9_]*\)(.*/int \1(void) { return 34; }/p' "$sys" | sort -u > "$root/lib/stubs/libcuda_stub.c"
gcc -shared -fPIC -O1 -Wl,-soname,libcuda.so.1 -o "$root/lib/stubs/libcuda.so" "$root/lib/stubs/libcuda_stub.c"

cat > "$venv/cuda-env.sh" <<EOF
export CUDA_ROOT=$root CUDA_PATH=$root CUDA_HOME=$root
export PATH=$root/bin:\$PATH
export CUDA_COMPUTE_CAP=\${CUDA_COMPUTE_CAP:-90}
export LIBRARY_PATH=$root/lib:$root/lib/stubs\${LIBRARY_PATH:+:\$LIBRARY_PATH}
export LD_LIBRARY_PATH=$root/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}
EOF
echo "toolchain ready: source $venv/cuda-env.sh"
