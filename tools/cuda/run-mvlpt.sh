#!/usr/bin/env bash
# Runs the CUDA build of mvlpt from the folder it was carried in (see docs/cuda.md).
# libcuda.so.1 comes from the NVIDIA driver; the CUDA 13 libraries (libcudart.so.13,
# libcublas.so.13, libcublasLt.so.13, libcurand.so.10, libnvrtc.so.13) from PyTorch's nvidia
# wheels, found with the python3 on PATH unless MVLPT_CUDA_LIB names the folder that holds them.
# When that libcublasLt predates cuBLAS 13.1, libmvlpt_cublaslt_compat.so is preloaded.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cuda_lib="${MVLPT_CUDA_LIB:-}"
if [[ -z "$cuda_lib" ]]; then
    cuda_lib="$(python3 - <<'PY'
import os
import nvidia
for root in nvidia.__path__:
    lib = os.path.join(root, "cu13", "lib")
    if os.path.isfile(os.path.join(lib, "libcudart.so.13")):
        print(lib)
        break
else:
    raise SystemExit("run-mvlpt.sh: no nvidia/cu13/lib with libcudart.so.13 in this python3; set MVLPT_CUDA_LIB")
PY
)"
fi
export LD_LIBRARY_PATH="$cuda_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
has_emulation_api="$(python3 -c 'import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
print(int(hasattr(lib, "cublasLtEmulationDescCreate")))' "$cuda_lib/libcublasLt.so.13")"
if [[ "$has_emulation_api" != 1 ]]; then
    export LD_PRELOAD="$here/libmvlpt_cublaslt_compat.so${LD_PRELOAD:+:$LD_PRELOAD}"
fi
exec "$here/mvlpt" "$@"
