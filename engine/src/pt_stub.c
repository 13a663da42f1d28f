/* pt_stub.c: temporary: the PyTorch .pt reader lands separately (pt_reader.c). */
#include "errors.h"
#include "tensors.h"
int rosa__pt_load(rosa__tensor_set *s, const char *path, char *err, size_t errlen) {
    (void)s;
    return rosa__err(err, errlen, ROSA_ERR_UNSUPPORTED, "%s: .pt adapters are not supported yet", path);
}
