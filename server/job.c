/* job.c: srv_job lifetime (reference counts shared by the loop, MHD, the response and the
 * engine) and the engine -> loop event hand-off (append under the job lock, list the job on the
 * server's ready list once; srv_wake_loop sends one uv_async_send per engine iteration, and the
 * loop drains everything). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server.h"

double srv_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

srv_job *srv_job_ref(srv_job *j) {
    atomic_fetch_add(&j->refs, 1);
    return j;
}

void srv_job_unref(srv_job *j) {
    if (atomic_fetch_sub(&j->refs, 1) != 1) return;
    srv_params_free(&j->p);
    for (int i = 0; i < j->n_prompts; i++) free(j->prompt_ids ? j->prompt_ids[i] : NULL);
    free(j->prompt_ids);
    free(j->prompt_n);
    for (int i = 0; i < j->n_choices && j->choices; i++) {
        srv_choice *c = &j->choices[i];
        sb_free(&c->text);
        sb_free(&c->pending);
        if (c->ds) rosa_detok_stream_free(c->ds);
        free(c->ids);
        free(c->pend);
        sb_free(&c->lp_json);
        sb_free(&c->lp_tokens);
        sb_free(&c->lp_values);
        sb_free(&c->lp_tops);
        sb_free(&c->lp_offsets);
    }
    free(j->choices);
    free(j->choice_stop);
    for (int i = 0; i < j->n_prompts && j->prompt_text; i++) free(j->prompt_text[i]);
    free(j->prompt_text);
    free(j->prompt_text_len);
    free(j->ev);
    free(j->body);
    sb_free(&j->out);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

void srv_job_push(srv_job *j, const srv_event *ev) {
    srv_server *s = j->srv;
    int list = 0;
    pthread_mutex_lock(&j->mu);
    if (j->n_ev == j->cap_ev) {
        int cap = j->cap_ev ? j->cap_ev * 2 : 16;
        srv_event *p = realloc(j->ev, sizeof *p * (size_t)cap);
        if (!p) {
            /* keep the finishing events: overwrite the last slot rather than lose EV_DONE */
            if (ev->kind == EV_DONE && j->n_ev > 0) j->ev[j->n_ev - 1] = *ev;
            pthread_mutex_unlock(&j->mu);
            return;
        }
        j->ev = p;
        j->cap_ev = cap;
    }
    j->ev[j->n_ev++] = *ev;
    if (!j->listed) {
        j->listed = 1;
        list = 1;
    }
    pthread_mutex_unlock(&j->mu);
    if (list) {
        srv_job_ref(j);
        pthread_mutex_lock(&s->ready_mu);
        j->next_ready = s->ready_head;
        s->ready_head = j;
        pthread_mutex_unlock(&s->ready_mu);
    }
    atomic_store_explicit(&s->wake_pending, 1, memory_order_release);
}

void srv_wake_loop(srv_server *s) {
    if (atomic_exchange(&s->wake_pending, 0)) uv_async_send(&s->wake);
}
