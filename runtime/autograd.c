/* Reverse-mode autograd: nodes, the backward engine, gradient plumbing.
 *
 * A non-leaf tensor holds its grad_fn; a node holds its next nodes, so a
 * graph lives exactly as long as the tensors that reach it. Leaves that
 * require grad own an accumulator node that points back at them weakly.
 * Saved tensors are detached aliases, so saving an op's own output makes
 * no reference cycle.
 */
#include "internal.h"
#include "tide/autocast.h"

static _Thread_local bool grad_disabled;

bool td_grad_enabled(void) { return !grad_disabled; }

bool td_set_grad_enabled(bool on)
{
    bool prev = !grad_disabled;
    grad_disabled = !on;
    return prev;
}

bool td_is_leaf(const td_tensor *t) { return t->grad_fn == NULL; }

const char *td_grad_fn_name(const td_tensor *t) { return t->grad_fn ? t->grad_fn->name : NULL; }

void td_set_grad(td_tensor *t, td_tensor *grad)
{
    td_tensor_retain(grad);
    td_tensor_release(t->grad);
    t->grad = grad;
}

td_status td_set_requires_grad(td_tensor *t, bool on)
{
    if (!td_is_leaf(t))
        return td_error(
            TD_EGRAD, 1,
            "requires_grad can only be changed on leaf tensors (this one comes from %s);"
            " use detach()",
            t->grad_fn->name);
    if (on && !td_dtype_is_float(t->dtype))
        return td_error(TD_EDTYPE, 1, "only float tensors can require gradients, not %s",
                        td_dtype_name(t->dtype));
    t->requires_grad = on;
    return TD_OK;
}

td_status td_detach(td_tensor *t, td_tensor **out)
{
    return td_make_view(t, t->ndim, t->shape, t->stride, t->offset, out);
}

bool td_needs_grad(int n, td_tensor *const *inputs)
{
    if (grad_disabled) return false;
    for (int i = 0; i < n; i++)
        if (inputs[i] && inputs[i]->requires_grad) return true;
    return false;
}

static td_node *node_alloc(const char *name)
{
    td_node *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->refcount = 1;
    n->name = name;
    return n;
}

static td_node *edge_of(td_tensor *t)
{
    if (!t || !t->requires_grad) return NULL;
    if (t->grad_fn) return t->grad_fn;
    if (!t->acc) {
        t->acc = node_alloc("AccumulateGrad");
        if (!t->acc) return NULL;
        t->acc->leaf = t;
    }
    return t->acc;
}

td_status td_node_new(const char *name, td_backward_fn fn, int n, td_tensor *const *inputs,
                      td_node **out)
{
    td_node *node = node_alloc(name);
    if (!node) return td_error(TD_ENOMEM, 0, "out of memory recording %s", name);
    node->backward = fn;
    node->next = calloc((size_t)(n ? n : 1), sizeof *node->next);
    if (!node->next) {
        free(node);
        return td_error(TD_ENOMEM, 0, "out of memory recording %s", name);
    }
    node->n_next = n;
    for (int i = 0; i < n; i++) {
        td_node *e = edge_of(inputs[i]);
        if (inputs[i] && inputs[i]->requires_grad && !e) {
            td_node_release(node);
            return td_error(TD_ENOMEM, 0, "out of memory recording %s", name);
        }
        if (e) e->refcount++;
        node->next[i] = e;
        if (i < 3 && inputs[i]) {
            node->in_ndim[i] = inputs[i]->ndim;
            memcpy(node->in_shape[i], inputs[i]->shape, sizeof(int64_t) * (size_t)inputs[i]->ndim);
            node->in_dtype[i] = inputs[i]->dtype;
            node->in_device[i] = td_device_of(inputs[i]);
        }
    }
    *out = node;
    return TD_OK;
}

static td_status save(td_node *n, td_tensor *t)
{
    if (n->n_saved >= TD_NODE_MAX_SAVED)
        return td_error(TD_EGRAD, 0, "internal: %s saves too many tensors", n->name);
    td_tensor *alias = NULL;
    TD_TRY(td_detach(t, &alias));
    n->saved[n->n_saved].t = alias;
    n->saved[n->n_saved].version = t->storage->version;
    n->n_saved++;
    return TD_OK;
}

td_status td_node_ctx(td_node *n, size_t size, void **out)
{
    if (n->ctx) return td_error(TD_EGRAD, 0, "internal: %s asks for a second context", n->name);
    n->ctx = calloc(1, size ? size : 1);
    if (!n->ctx) return td_error(TD_ENOMEM, 0, "out of memory recording %s", n->name);
    *out = n->ctx;
    return TD_OK;
}

td_status td_node_keep(td_node *n, td_tensor *t, td_tensor **slot)
{
    TD_TRY(save(n, t));
    n->saved[n->n_saved - 1].slot = slot;
    *slot = n->saved[n->n_saved - 1].t;
    return TD_OK;
}

td_tensor *td_node_take(td_node *n, td_tensor **slot)
{
    for (int i = 0; i < n->n_saved; i++)
        if (n->saved[i].slot == slot && n->saved[i].t) {
            td_tensor *t = n->saved[i].t;
            n->saved[i].t = NULL;
            n->saved[i].slot = NULL;
            *slot = NULL;
            return t;
        }
    return NULL;
}

td_status td_node_finish(td_node *n, td_status st, td_tensor *out)
{
    if (st != TD_OK) {
        td_node_release(n);
        return st;
    }
    td_node_attach(n, out);
    return TD_OK;
}

void td_node_attach(td_node *n, td_tensor *out)
{
    td_node_release(out->grad_fn);
    out->grad_fn = n;
    out->requires_grad = true;
}

static void release_saved(td_node *n)
{
    for (int i = 0; i < n->n_saved; i++) {
        td_tensor_release(n->saved[i].t);
        n->saved[i].t = NULL;
        if (n->saved[i].slot) *n->saved[i].slot = NULL;
    }
}

/* iterative, so that a graph a million nodes deep frees without
 * exhausting the C stack */
void td_node_release(td_node *n)
{
    if (!n || --n->refcount > 0) return;
    size_t cap = 64, len = 0;
    td_node **stack = malloc(cap * sizeof *stack);
    td_node *cur = n;
    for (;;) {
        for (int i = 0; i < cur->n_next; i++) {
            td_node *e = cur->next[i];
            if (!e || --e->refcount > 0) continue;
            if (len == cap && stack) {
                td_node **grown = realloc(stack, 2 * cap * sizeof *stack);
                if (grown) {
                    stack = grown;
                    cap *= 2;
                }
            }
            if (stack && len < cap)
                stack[len++] = e;
            else
                e->refcount++; /* could not track it: leak rather than crash */
        }
        release_saved(cur);
        td_tensor_release(cur->pending);
        if (cur->leaf && cur->leaf->acc == cur) cur->leaf->acc = NULL;
        free(cur->next);
        free(cur->ctx);
        free(cur);
        if (!stack || len == 0) break;
        cur = stack[--len];
    }
    free(stack);
}

td_status td_grad_to_input(td_node *n, int i, td_tensor *g, td_tensor **out)
{
    td_tensor *s = NULL;
    TD_TRY(td_sum_to_shape(g, n->in_ndim[i], n->in_shape[i], &s));
    if (i < 3 &&
        !td_device_eq(td_device_of(s), n->in_device[i])) { /* a 0-dim CPU input of a CUDA op */
        td_tensor *m = NULL;
        td_status st = td_to_device(s, n->in_device[i], &m);
        td_tensor_release(s);
        if (st != TD_OK) return st;
        s = m;
    }
    if (s->dtype == n->in_dtype[i]) {
        *out = s;
        return TD_OK;
    }
    td_status st = td_to_dtype(s, n->in_dtype[i], out);
    td_tensor_release(s);
    return st;
}

/* ---- the engine ------------------------------------------------------ */

typedef struct {
    td_node **v;
    size_t len, cap;
} node_vec;

static bool vec_push(node_vec *a, td_node *n)
{
    if (a->len == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 64;
        td_node **v = realloc(a->v, cap * sizeof *v);
        if (!v) return false;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->len++] = n;
    return true;
}

static td_status add_pending(td_node *n, td_tensor *g)
{
    if (!n->pending) {
        td_tensor_retain(g);
        n->pending = g;
        return TD_OK;
    }
    td_tensor *sum = NULL;
    TD_TRY(td_binary(TD_ADD, n->pending, g, &sum));
    td_tensor_release(n->pending);
    n->pending = sum;
    return TD_OK;
}

static td_status accumulate(td_node *n)
{
    td_tensor *leaf = n->leaf, *g = n->pending;
    if (!leaf || !g) return TD_OK;
    if (!leaf->grad) {
        /* a gradient nobody else can see (the engine holds the only
         * reference to it and to its storage) becomes .grad as it is, as
         * PyTorch steals it: copying a 32 MB logits gradient costs as much
         * as a fused loss's whole backward */
        bool leaf_cl = td_keeps_channels_last(leaf);
        bool same_layout = leaf_cl ? td_is_channels_last(g) : td_is_contiguous(g);
        if (g->refcount == 1 && g->storage->refcount == 1 && same_layout && !g->grad_fn &&
            g->dtype == leaf->dtype && td_same_shape(g, leaf)) {
            td_tensor_retain(g);
            leaf->grad = g;
            return TD_OK;
        }
        /* otherwise a copy in the leaf's own layout, as PyTorch's
         * AccumulateGrad: a channels-last input gets a channels-last .grad,
         * a contiguous parameter a contiguous one */
        td_tensor *c = NULL;
        if (leaf_cl && td_same_shape(g, leaf) && !g->grad_fn) {
            TD_TRY(td_empty_as(leaf, g->dtype, &c));
            td_backend_of(g)->copy(c, g);
        } else {
            TD_TRY(td_clone(g, &c));
        }
        leaf->grad = c;
        return TD_OK;
    }
    return td_binary_(TD_ADD, leaf->grad, g);
}

static td_grad_listener *listeners;
static int n_listeners;

td_status td_grad_listen(const td_grad_listener *l)
{
    td_grad_listener *v = realloc(listeners, sizeof *v * (size_t)(n_listeners + 1));
    if (!v) return td_error(TD_ENOMEM, 0, "out of memory");
    listeners = v;
    listeners[n_listeners++] = *l;
    return TD_OK;
}

void td_grad_unlisten(void *ud)
{
    for (int i = 0; i < n_listeners; i++)
        if (listeners[i].ud == ud) {
            memmove(listeners + i, listeners + i + 1,
                    sizeof *listeners * (size_t)(n_listeners - i - 1));
            n_listeners--;
            i--;
        }
    if (!n_listeners) {
        free(listeners);
        listeners = NULL;
    }
}

static td_status tell_grad(td_tensor *leaf)
{
    for (int i = 0; i < n_listeners; i++) TD_TRY(listeners[i].on_grad(listeners[i].ud, leaf));
    return TD_OK;
}

static td_status tell_end(td_status st)
{
    for (int i = 0; i < n_listeners; i++) {
        td_status s = listeners[i].on_end(listeners[i].ud, st == TD_OK);
        if (st == TD_OK) st = s;
    }
    return st;
}

static td_status run_node(td_node *n)
{
    if (n->released)
        return td_error(TD_EGRAD, 0,
                        "trying to backward through the graph a second time (through %s); "
                        "pass retain_graph = true to the first backward",
                        n->name);
    for (int i = 0; i < n->n_saved; i++)
        if (n->saved[i].t && n->saved[i].t->storage->version != n->saved[i].version)
            return td_error(TD_EGRAD, 0,
                            "a tensor needed by %s for its gradient was modified by an in-place "
                            "operation",
                            n->name);
    td_tensor **grads = calloc((size_t)(n->n_next ? n->n_next : 1), sizeof *grads);
    if (!grads) return td_error(TD_ENOMEM, 0, "out of memory in backward");
    td_status st = n->backward(n, n->pending, grads);
    for (int i = 0; i < n->n_next && st == TD_OK; i++)
        if (n->next[i] && grads[i]) st = add_pending(n->next[i], grads[i]);
    td_release_many(n->n_next, grads);
    free(grads);
    return st;
}

td_status td_backward(td_tensor *root, td_tensor *grad, bool retain_graph)
{
    if (!root->requires_grad)
        return td_error(TD_EGRAD, 1,
                        "backward on a tensor that does not require grad and has no grad_fn");
    td_tensor *seed = NULL;
    td_status st = TD_OK;
    if (!grad) {
        if (td_numel(root) != 1)
            return td_error(TD_EGRAD, 1,
                            "backward needs a gradient argument for a tensor of %lld elements "
                            "(only one-element outputs get an implicit 1)",
                            (long long)td_numel(root));
        TD_TRY(td_full_on(root->ndim, root->shape, 1.0, root->dtype, td_device_of(root), &seed));
    } else {
        if (!td_same_shape(grad, root)) {
            char a[128], b[128];
            return td_error(TD_ESHAPE, 1,
                            "gradient of shape %s does not match the output's shape %s",
                            td_shape_str(grad, a, sizeof a), td_shape_str(root, b, sizeof b));
        }
        TD_TRY(td_detach(grad, &seed));
    }
    td_node *start = edge_of(root);
    if (!start) {
        td_tensor_release(seed);
        return td_error(TD_ENOMEM, 0, "out of memory in backward");
    }
    bool prev = td_set_grad_enabled(false);
    /* gradients run in the dtypes their forward ops ran in: autocast, if a
     * region is open around backward, does not cast them again */
    int ac_depth = -1;
    if (td_autocast_enabled() && td_autocast_enter(TD_FLOAT32, false, &ac_depth) != TD_OK)
        ac_depth = -1;
    node_vec all = {0}, ready = {0};
    /* discover the reachable graph and count each node's incoming edges */
    start->deps = 0;
    start->seq = -1;
    if (!vec_push(&all, start)) st = td_error(TD_ENOMEM, 0, "out of memory in backward");
    for (size_t k = 0; k < all.len && st == TD_OK; k++) {
        td_node *n = all.v[k];
        for (int i = 0; i < n->n_next; i++) {
            td_node *e = n->next[i];
            if (!e) continue;
            if (e->seq != -1) {
                e->seq = -1; /* mark as seen */
                e->deps = 0;
                if (!vec_push(&all, e)) {
                    st = td_error(TD_ENOMEM, 0, "out of memory in backward");
                    break;
                }
            }
            e->deps++;
        }
    }
    if (st == TD_OK) st = add_pending(start, seed);
    if (st == TD_OK && !vec_push(&ready, start))
        st = td_error(TD_ENOMEM, 0, "out of memory in backward");
    while (st == TD_OK && ready.len) {
        td_node *n = ready.v[--ready.len];
        if (!n->backward) {
            st = accumulate(n);
            if (st == TD_OK && n->leaf && n->pending && n_listeners) st = tell_grad(n->leaf);
        } else if (n->pending)
            st = run_node(n);
        td_tensor_release(n->pending);
        n->pending = NULL;
        for (int i = 0; i < n->n_next && st == TD_OK; i++) {
            td_node *e = n->next[i];
            if (e && --e->deps == 0 && !vec_push(&ready, e))
                st = td_error(TD_ENOMEM, 0, "out of memory in backward");
        }
    }
    for (size_t k = 0; k < all.len; k++) {
        td_node *n = all.v[k];
        n->seq = 0;
        td_tensor_release(n->pending);
        n->pending = NULL;
        if (!retain_graph && st == TD_OK && n->backward) {
            release_saved(n);
            n->released = true;
        }
    }
    free(all.v);
    free(ready.v);
    td_tensor_release(seed);
    if (n_listeners) st = tell_end(st);
    td_set_grad_enabled(prev);
    if (ac_depth >= 0) (void)td_autocast_exit(ac_depth);
    return st;
}
