/* test_cuda_backend.c: CUDA backend behaviour that only a device can show: when device memory
 * for a larger call's scratch is not there, the call is refused with ROSA_ERR_LIMIT before
 * anything changes, the session is not marked broken, and the same call succeeds (with the
 * golden logits) once memory is back.  Rollback is not supported on the device yet
 * (docs/CUDA.md): rosa_session_truncate answers ROSA_ERR_UNSUPPORTED and changes nothing, and
 * the model reports a horizon of 0.  Needs ../shared (tiny-post-m4) and a CUDA device;
 * exits 77 without either. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>

#include "rosa.h"
#include "testutil.h"

START_TEST(scratch_failure_refuses_without_breaking) {
    char *dir = tu_path("%s/golden/tiny-post-m4", tu_shared_dir());
    rosa_load_opts o;
    char *adapter = tu_golden_opts(dir, &o);
    o.device = "cuda";
    o.precision = "f32";
    o.gpu_memory = (size_t)1 << 30;
    char *mdir = tu_path("%s/model", dir), *lp = tu_path("%s/logits.f32", dir), *cp = tu_path("%s/case.json", dir);
    size_t len = 0;
    float *golden = tu_read_file(lp, &len);
    char *text = tu_read_file(cp, NULL);
    ck_assert_ptr_nonnull(golden);
    ck_assert_ptr_nonnull(text);
    /* the prompt: the integers of case.json's "prompt" array */
    int32_t prompt[4096];
    int T = 0;
    for (char *s = strchr(strstr(text, "\"prompt\""), '[') + 1; *s && *s != ']' && T < 4096;) {
        char *e;
        long v = strtol(s, &e, 10);
        if (e == s) s++;
        else { prompt[T++] = (int32_t)v; s = e; }
    }
    ck_assert_int_gt(T, 100);
    int V = (int)(len / sizeof(float) / (size_t)T);
    rosa_model *m;
    char err[512] = "";
    ck_assert_msg(rosa_model_load(mdir, &o, &m, err, sizeof err) == 0, "%s", err);
    rosa_session *s;
    ck_assert_int_eq(rosa_session_new(m, &s), 0);
    ck_assert_int_eq(rosa_session_feed(s, prompt, 4, NULL), 0);

    /* take (nearly) all free device memory, so the next, larger call cannot grow its scratch */
    void *hog[4096];
    int nh = 0;
    for (size_t chunk = (size_t)256 << 20; chunk >= ((size_t)1 << 16); chunk /= 4)
        while (nh < 4096 && cudaMalloc(&hog[nh], chunk) == cudaSuccess) nh++;
    cudaGetLastError();
    int n = T - 4 < 200 ? T - 4 : 200;
    float *out = malloc((size_t)n * V * sizeof(float));
    int rc = rosa_session_feed(s, prompt + 4, n, out);
    for (int i = 0; i < nh; i++) cudaFree(hog[i]);
    ck_assert_msg(rc == ROSA_ERR_LIMIT, "a call whose scratch cannot be allocated: %d (%s), want ROSA_ERR_LIMIT", rc,
                  rosa_strerror(rc));
    ck_assert_int_eq(rosa_session_length(s), 4);

    /* memory is back: the same call goes through and the session was never broken */
    ck_assert_int_eq(rosa_session_feed(s, prompt + 4, n, out), 0);
    double worst = 0;
    for (size_t i = 0; i < (size_t)n * V; i++) worst = fmax(worst, fabs((double)out[i] - golden[(size_t)4 * V + i]));
    ck_assert_msg(worst <= 1e-3, "logits after the refused call differ from golden by %g", worst);

    /* no rollback on the device: refused before anything changes, no horizon kept */
    ck_assert_int_eq(rosa_model_get_info(m)->rollback_tokens, 0);
    ck_assert_int_eq(rosa_session_truncate(s, 4), ROSA_ERR_UNSUPPORTED);
    ck_assert_int_eq(rosa_session_length(s), 4 + n);
    ck_assert_ptr_nonnull(rosa_session_logits(s));
    ck_assert_mem_eq(rosa_session_logits(s), out + (size_t)(n - 1) * V, (size_t)V * sizeof(float));
    ck_assert_int_eq(rosa_session_truncate(s, 4 + n), 0); /* nothing to change */
    rosa_session_mem mem;
    rosa_session_memory(s, &mem);
    ck_assert_uint_eq(mem.rollback_bytes, 0);
    rosa_session_free(s);
    rosa_model_free(m);
    free(out); free(golden); free(text); free(adapter); free(mdir); free(lp); free(cp); free(dir);
}
END_TEST

int main(void) {
    tu_require_shared("test_cuda_backend");
    if (rosa_device_count("cuda") < 1) {
        printf("test_cuda_backend: no CUDA device: skipped\n");
        return 77;
    }
    Suite *s = suite_create("cuda_backend");
    TCase *tc = tcase_create("backend");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, scratch_failure_refuses_without_breaking);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
