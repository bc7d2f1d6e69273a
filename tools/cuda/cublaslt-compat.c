/*
 * Fallback for the cuBLASLt "emulation" API (cublasLtEmulationDesc*), which cuBLAS added in
 * 13.1 (CUDA 13.0 Update 2). cudarc's CUDA 13.0 bindings import these functions, and rustc
 * resolves a dylib's imports when it is loaded, so with an older libcublasLt.so.13 the binary
 * would not start. run-mvlpt.sh preloads this library only when the libcublasLt it found lacks
 * them. mvlpt and candle never call this API; should anything call it, it is told "not
 * supported" (CUBLAS_STATUS_NOT_SUPPORTED = 15).
 */
#define CUBLAS_STATUS_NOT_SUPPORTED 15

int cublasLtEmulationDescCreate(void) { return CUBLAS_STATUS_NOT_SUPPORTED; }
int cublasLtEmulationDescDestroy(void) { return CUBLAS_STATUS_NOT_SUPPORTED; }
int cublasLtEmulationDescGetAttribute(void) { return CUBLAS_STATUS_NOT_SUPPORTED; }
int cublasLtEmulationDescInit_internal(void) { return CUBLAS_STATUS_NOT_SUPPORTED; }
int cublasLtEmulationDescSetAttribute(void) { return CUBLAS_STATUS_NOT_SUPPORTED; }
