/* cuda_absent.c: linked instead of the CUDA backend when the build has no CUDA toolkit
 * (ROSA_CUDA=OFF, or AUTO without nvcc): device "cuda" is then refused with a clear message. */
#include "core/model.h"

const rosa__backend *rosa__cuda_backend_get(void) { return NULL; }

int rosa__cuda_device_count(void) { return 0; }
