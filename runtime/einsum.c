/* einsum as torch.einsum does it without opt_einsum: diagonals of repeated
 * indices first, then the operands contracted pairwise from the left, each
 * pair through one bmm. Every step is a recorded op (mul, sum, permute,
 * reshape, bmm), so autograd needs nothing of its own here.
 *
 * Each operand is brought to one "aligned" layout: a dim per distinct
 * index of the equation, in a fixed order (the ellipsis dims first, then
 * the letters A-Z, a-z), of size 1 where the operand lacks the index. A
 * pair is then classified index by index, as PyTorch's sumproduct_pair. */
#include "internal.h"
#include "tide/reduce_dims.h"
#include "tide/tensor_args.h"

#include <ctype.h>
#include <stdio.h>

#define MAX_OPERANDS 64
#define NLETTERS     52
#define ELLIPSIS     (-1)

typedef struct {
    int n;                            /* items in the subscript */
    int item[TD_MAX_DIMS + NLETTERS]; /* a letter (0..51) or ELLIPSIS */
    bool has_ellipsis;
} subscript;

typedef struct {
    int nops;
    subscript in[MAX_OPERANDS], out;
    bool explicit_out;
    int ell;                /* ellipsis dims in the aligned layout */
    int nlabels;            /* aligned dims */
    int label_of[NLETTERS]; /* letter -> aligned dim, -1 when unused */
    bool in_output[TD_MAX_DIMS];
    int out_n; /* output dims, as aligned dims in output order */
    int out_label[TD_MAX_DIMS];
} plan;

static int letter_index(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    return c - 'a' + 26;
}

/* one subscript from s up to a ',' or '-' or the end; *end after it */
static td_status parse_subscript(const char *s, int pos0, subscript *sub, const char **end)
{
    const char *p = s;
    sub->n = 0;
    sub->has_ellipsis = false;
    while (*p && *p != ',' && *p != '-') {
        if (*p == ' ') {
            p++;
        } else if (*p == '.') {
            if (p[1] != '.' || p[2] != '.')
                return td_error(
                    TD_EINVAL, 1,
                    "einsum(): found '.' for operand at position %d that is not part of any ellipsis",
                    (int)(p - s) + pos0);
            if (sub->has_ellipsis)
                return td_error(TD_EINVAL, 1,
                                "einsum(): found more than one ellipsis ('...') in a subscript");
            sub->has_ellipsis = true;
            sub->item[sub->n++] = ELLIPSIS;
            p += 3;
        } else if (isalpha((unsigned char)*p) && (unsigned char)*p < 128) {
            if (sub->n >= TD_MAX_DIMS + 1)
                return td_error(TD_EINVAL, 1,
                                "einsum(): a subscript names more dims than a tensor has (%d)",
                                TD_MAX_DIMS);
            sub->item[sub->n++] = letter_index(*p);
            p++;
        } else {
            return td_error(
                TD_EINVAL, 1,
                "einsum(): invalid subscript given at index %d in the equation (letters a-z, A-Z and '...' only)",
                (int)(p - s) + pos0);
        }
    }
    *end = p;
    return TD_OK;
}

static int letters_of(const subscript *s) { return s->n - (s->has_ellipsis ? 1 : 0); }

static td_status make_plan(const char *eq, int n, td_tensor **ops, plan *pl)
{
    memset(pl, 0, sizeof *pl);
    const char *p = eq;
    int k = 0;
    for (;;) {
        if (k >= MAX_OPERANDS)
            return td_error(TD_EINVAL, 1, "einsum(): more than %d operands", MAX_OPERANDS);
        TD_TRY(parse_subscript(p, (int)(p - eq), &pl->in[k], &p));
        k++;
        if (*p == ',') {
            p++;
            continue;
        }
        break;
    }
    if (*p == '-') {
        if (p[1] != '>')
            return td_error(TD_EINVAL, 1, "einsum(): '-' must be followed by '>' in the equation");
        p += 2;
        TD_TRY(parse_subscript(p, (int)(p - eq), &pl->out, &p));
        if (*p)
            return td_error(TD_EINVAL, 1,
                            "einsum(): the output subscript may not contain ',' or '-'");
        pl->explicit_out = true;
    }
    if (k != n)
        return td_error(TD_EINVAL, 1,
                        "einsum(): %d operands were provided but the equation specifies %d", n, k);
    pl->nops = n;
    int count[NLETTERS] = {0};
    pl->ell = 0;
    for (int i = 0; i < n; i++) {
        const subscript *s = &pl->in[i];
        int nl = letters_of(s);
        if (s->has_ellipsis ? ops[i]->ndim < nl : ops[i]->ndim != nl)
            return td_error(
                TD_ESHAPE, 2 + i,
                "einsum(): the number of subscripts in the equation (%d) does not match the number of dimensions (%d) for operand %d%s",
                nl, ops[i]->ndim, i, s->has_ellipsis ? "" : " and no ellipsis was given");
        if (s->has_ellipsis && ops[i]->ndim - nl > pl->ell) pl->ell = ops[i]->ndim - nl;
        for (int j = 0; j < s->n; j++)
            if (s->item[j] != ELLIPSIS) count[s->item[j]]++;
    }
    int nl = pl->ell;
    for (int c = 0; c < NLETTERS; c++) {
        pl->label_of[c] = -1;
        if (!count[c]) continue;
        if (nl >= TD_MAX_DIMS)
            return td_error(
                TD_EINVAL, 1,
                "einsum(): at most %d distinct indices (ellipsis dims included), as a tensor has at most %d dims",
                TD_MAX_DIMS, TD_MAX_DIMS);
        pl->label_of[c] = nl++;
    }
    pl->nlabels = nl;
    if (pl->explicit_out) {
        bool seen[NLETTERS] = {false};
        for (int j = 0; j < pl->out.n; j++) {
            int c = pl->out.item[j];
            if (c == ELLIPSIS) {
                for (int e = 0; e < pl->ell; e++) pl->out_label[pl->out_n++] = e;
                continue;
            }
            char ch = (char)(c < 26 ? 'A' + c : 'a' + c - 26);
            if (!count[c])
                return td_error(
                    TD_EINVAL, 1,
                    "einsum(): output subscript %c does not appear in the equation for any input operand",
                    ch);
            if (seen[c])
                return td_error(
                    TD_EINVAL, 1,
                    "einsum(): output subscript %c appears more than once in the output", ch);
            seen[c] = true;
            pl->out_label[pl->out_n++] = pl->label_of[c];
        }
    } else {
        /* the ellipsis dims, then the indices seen once, in A-Z a-z order */
        for (int e = 0; e < pl->ell; e++) pl->out_label[pl->out_n++] = e;
        for (int c = 0; c < NLETTERS; c++)
            if (count[c] == 1) pl->out_label[pl->out_n++] = pl->label_of[c];
    }
    for (int j = 0; j < pl->out_n; j++) pl->in_output[pl->out_label[j]] = true;
    return TD_OK;
}

/* t with its dims j0 < j1 (of equal size) replaced by their diagonal at j0 */
static td_status diagonal(td_tensor *t, int j0, int j1, td_tensor **out)
{
    int64_t n = t->shape[j0], shape[TD_MAX_DIMS];
    for (int i = 0; i < t->ndim; i++) shape[i] = i == j0 || i == j1 ? n : 1;
    td_tensor *e = NULL, *ed = NULL, *er = NULL, *m = NULL;
    td_status st;
    bool prev = td_set_grad_enabled(false);
    st = td_eye(n, n, t->dtype, &e);
    if (st == TD_OK) st = td_to_device(e, td_device_of(t), &ed);
    if (st == TD_OK) st = td_reshape(ed, t->ndim, shape, &er);
    td_set_grad_enabled(prev);
    if (st != TD_OK) goto fail;
    TD_CHECK(td_binary(TD_MUL, t, er, &m));
    TD_CHECK(td_sum(m, j1, false, false, out));
fail:
    td_tensor_release(e);
    td_tensor_release(ed);
    td_tensor_release(er);
    td_tensor_release(m);
    return st;
}

/* operand i in the aligned layout */
static td_status align(const plan *pl, int i, td_tensor *x, td_tensor **out)
{
    const subscript *s = &pl->in[i];
    int lab[TD_MAX_DIMS], nd = 0, nell = x->ndim - letters_of(s);
    for (int j = 0; j < s->n; j++) {
        if (s->item[j] == ELLIPSIS)
            for (int e = 0; e < nell; e++) lab[nd++] = pl->ell - nell + e;
        else
            lab[nd++] = pl->label_of[s->item[j]];
    }
    td_tensor *t = x;
    td_tensor_retain(t);
    td_status st = TD_OK;
    /* repeated indices: the diagonal, one repeat at a time */
    for (int a = 0; a < nd && st == TD_OK; a++)
        for (int b = a + 1; b < nd; b++) {
            if (lab[a] != lab[b]) continue;
            if (t->shape[a] != t->shape[b]) {
                int c = -1;
                for (int l = 0; l < NLETTERS; l++)
                    if (pl->label_of[l] == lab[a]) c = l;
                st = td_error(
                    TD_ESHAPE, 2 + i,
                    "einsum(): subscript %c is repeated for operand %d but the sizes don't match, %lld != %lld",
                    c < 26 ? 'A' + c : 'a' + c - 26, i, (long long)t->shape[a],
                    (long long)t->shape[b]);
                break;
            }
            td_tensor *d = NULL;
            st = diagonal(t, a, b, &d);
            td_tensor_release(t);
            t = d;
            if (st != TD_OK) break;
            for (int j = b; j + 1 < nd; j++) lab[j] = lab[j + 1];
            nd--;
            b--;
        }
    if (st != TD_OK) {
        td_tensor_release(t);
        return st;
    }
    int perm[TD_MAX_DIMS], k = 0;
    int64_t shape[TD_MAX_DIMS];
    for (int l = 0; l < pl->nlabels; l++) {
        shape[l] = 1;
        for (int j = 0; j < nd; j++)
            if (lab[j] == l) perm[k++] = j, shape[l] = t->shape[j];
    }
    td_tensor *pt = NULL;
    st = td_permute(t, nd, perm, &pt);
    if (st == TD_OK) st = td_reshape(pt, pl->nlabels, shape, out);
    td_tensor_release(t);
    td_tensor_release(pt);
    return st;
}

/* the indices that must survive contracting operand `upto`: those of the
 * output and of the operands after it */
static void kept_after(const plan *pl, td_tensor **aligned, int upto, bool *keep)
{
    for (int l = 0; l < pl->nlabels; l++) keep[l] = pl->in_output[l];
    for (int i = upto + 1; i < pl->nops; i++)
        for (int l = 0; l < pl->nlabels; l++)
            if (aligned[i]->shape[l] != 1) keep[l] = true;
}

/* x summed (keeping dims) over the listed aligned dims, or x itself */
static td_status sum_out(td_tensor *x, int n, const int *dims, td_tensor **out)
{
    if (n == 0) {
        td_tensor_retain(x);
        *out = x;
        return TD_OK;
    }
    return td_sum_dims(x, n, dims, true, false, x->dtype, out);
}

static int64_t prod_of(const td_tensor *t, const int *dims, int n)
{
    int64_t p = 1;
    for (int i = 0; i < n; i++) p *= t->shape[dims[i]];
    return p;
}

static td_status pair(const plan *pl, td_tensor *a0, td_tensor *b0, const bool *keep,
                      td_tensor **out)
{
    int L = pl->nlabels, only_a[TD_MAX_DIMS], only_b[TD_MAX_DIMS], na = 0, nb = 0;
    for (int l = 0; l < L; l++) {
        if (keep[l] || a0->shape[l] == b0->shape[l]) continue;
        if (b0->shape[l] == 1)
            only_a[na++] = l;
        else if (a0->shape[l] == 1)
            only_b[nb++] = l;
    }
    td_tensor *t[8] = {NULL};
    td_status st;
    TD_CHECK(sum_out(a0, na, only_a, &t[0]));
    TD_CHECK(sum_out(b0, nb, only_b, &t[1]));
    td_tensor *a = t[0], *b = t[1];
    int bat[TD_MAX_DIMS], ao[TD_MAX_DIMS], bo[TD_MAX_DIMS], sm[TD_MAX_DIMS];
    int nbat = 0, nao = 0, nbo = 0, nsm = 0;
    for (int l = 0; l < L; l++) {
        int64_t sa = a->shape[l], sb = b->shape[l];
        if (sa != sb && sa != 1 && sb != 1) {
            st = td_error(TD_ESHAPE, 2,
                          "einsum(): operands do not broadcast: an index has sizes %lld and %lld",
                          (long long)sa, (long long)sb);
            goto fail;
        }
        if (!keep[l])
            sm[nsm++] = l;
        else if (sa == sb)
            bat[nbat++] = l;
        else if (sb == 1)
            ao[nao++] = l;
        else
            bo[nbo++] = l;
    }
    int pa[TD_MAX_DIMS], pb[TD_MAX_DIMS], order[TD_MAX_DIMS], k = 0;
    /* a as (batch, a's own, summed), b as (batch, summed, b's own) */
    for (int i = 0; i < nbat; i++) pa[k++] = bat[i];
    for (int i = 0; i < nao; i++) pa[k++] = ao[i];
    for (int i = 0; i < nsm; i++) pa[k++] = sm[i];
    for (int i = 0; i < nbo; i++) pa[k++] = bo[i];
    k = 0;
    for (int i = 0; i < nbat; i++) pb[k++] = bat[i];
    for (int i = 0; i < nsm; i++) pb[k++] = sm[i];
    for (int i = 0; i < nbo; i++) pb[k++] = bo[i];
    for (int i = 0; i < nao; i++) pb[k++] = ao[i];
    int64_t sb3 = prod_of(a, bat, nbat), sa3 = prod_of(a, ao, nao), ss3 = prod_of(a, sm, nsm),
            so3 = prod_of(b, bo, nbo);
    int64_t ashape[3] = {sb3, sa3, ss3}, bshape[3] = {sb3, ss3, so3};
    TD_CHECK(td_permute(a, L, pa, &t[2]));
    TD_CHECK(td_reshape(t[2], 3, ashape, &t[3]));
    TD_CHECK(td_permute(b, L, pb, &t[4]));
    TD_CHECK(td_reshape(t[4], 3, bshape, &t[5]));
    TD_CHECK(td_bmm(t[3], t[5], &t[6]));
    /* back to the aligned layout: (batch, a's own, b's own, summed as 1) */
    int64_t rshape[TD_MAX_DIMS];
    k = 0;
    for (int i = 0; i < nbat; i++) order[k] = bat[i], rshape[k++] = a->shape[bat[i]];
    for (int i = 0; i < nao; i++) order[k] = ao[i], rshape[k++] = a->shape[ao[i]];
    for (int i = 0; i < nbo; i++) order[k] = bo[i], rshape[k++] = b->shape[bo[i]];
    for (int i = 0; i < nsm; i++) order[k] = sm[i], rshape[k++] = 1;
    int inv[TD_MAX_DIMS];
    for (int i = 0; i < L; i++) inv[order[i]] = i;
    TD_CHECK(td_reshape(t[6], L, rshape, &t[7]));
    TD_CHECK(td_permute(t[7], L, inv, out));
fail:
    td_release_many(8, t);
    return st;
}

td_status td_einsum(const char *equation, int n, td_tensor **operands, td_tensor **out)
{
    if (n < 1) return td_error(TD_EINVAL, 2, "einsum(): must provide at least one operand");
    for (int i = 1; i < n; i++)
        if (operands[i]->dtype != operands[0]->dtype)
            return td_error(TD_EDTYPE, 2 + i,
                            "einsum(): operands must have one dtype, got %s and %s",
                            td_dtype_name(operands[0]->dtype), td_dtype_name(operands[i]->dtype));
    TD_TRY(td_same_device(n, operands));
    plan pl;
    TD_TRY(make_plan(equation, n, operands, &pl));
    td_tensor **al = calloc((size_t)n, sizeof *al);
    if (!al) return td_error(TD_ENOMEM, 0, "out of memory in einsum");
    td_tensor *cur = NULL, *next = NULL, *pt = NULL;
    td_status st = TD_OK;
    for (int i = 0; i < n && st == TD_OK; i++) st = align(&pl, i, operands[i], &al[i]);
    if (st != TD_OK) goto fail;
    cur = al[0];
    td_tensor_retain(cur);
    bool keep[TD_MAX_DIMS];
    for (int i = 1; i < n; i++) {
        kept_after(&pl, al, i, keep);
        TD_CHECK(pair(&pl, cur, al[i], keep, &next));
        td_tensor_release(cur);
        cur = next;
        next = NULL;
    }
    /* what is left outside the output is summed (one operand, or sizes
     * kept as 1 for a later operand that broadcast there) */
    int rest[TD_MAX_DIMS], nrest = 0;
    for (int l = 0; l < pl.nlabels; l++)
        if (!pl.in_output[l] && cur->shape[l] != 1) rest[nrest++] = l;
    TD_CHECK(sum_out(cur, nrest, rest, &next));
    td_tensor_release(cur);
    cur = next;
    next = NULL;
    int perm[TD_MAX_DIMS], k = 0;
    int64_t oshape[TD_MAX_DIMS];
    for (int j = 0; j < pl.out_n; j++)
        perm[k] = pl.out_label[j], oshape[k++] = cur->shape[pl.out_label[j]];
    for (int l = 0; l < pl.nlabels; l++)
        if (!pl.in_output[l]) perm[k++] = l;
    TD_CHECK(td_permute(cur, pl.nlabels, perm, &pt));
    TD_CHECK(td_reshape(pt, pl.out_n, oshape, out));
fail:
    td_release_many(n, al);
    free(al);
    td_tensor_release(cur);
    td_tensor_release(next);
    td_tensor_release(pt);
    return st;
}
