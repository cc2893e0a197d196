/* The loss table: every loss's name, module, inputs, options, defaults and
 * ranges, in one place (see tide/losses.h). */
#include "loss_family.h"
#include "tide/autocast.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#define SMX(f) offsetof(td_softmax_loss_opts, f)
#define BIN(f) offsetof(td_binary_loss_opts, f)
#define REG(f) offsetof(td_regression_loss_opts, f)
#define MAR(f) offsetof(td_margin_loss_opts, f)
#define CTC(f) offsetof(td_ctc_loss_opts, f)

/* option rows: name, type, offset(s), default, then the range */
#define TENSOR(name, off)                                                                          \
    {                                                                                              \
        name, TD_OPT_TENSOR, off, 0, 0, 0, 0, 0, NULL                                              \
    }
#define INTEGER(name, off, def)                                                                    \
    {                                                                                              \
        name, TD_OPT_INTEGER, off, 0, def, 0, 0, 0, NULL                                           \
    }
#define BOOLEAN(name, off, def)                                                                    \
    {                                                                                              \
        name, TD_OPT_BOOLEAN, off, 0, def, 0, 0, 0, NULL                                           \
    }
#define NUMBER(name, off, def, ...)                                                                \
    {                                                                                              \
        name, TD_OPT_NUMBER, off, 0, def, __VA_ARGS__                                              \
    }
#define REDUCTION(off, def)                                                                        \
    {                                                                                              \
        "reduction", TD_OPT_REDUCTION, off, 0, def, 0, 0, 0, NULL                                  \
    }

#define ANY                 0, 0, 0, NULL
#define IN_0_1(says)        TD_LO | TD_HI, 0, 1, says
#define FINITE_GE(lo, says) TD_LO | TD_FINITE, lo, 0, says

/* inputs: name, kind, usual dims */
#define IN2(a, ka, da, b, kb, db)                                                                  \
    2,                                                                                             \
    {                                                                                              \
        {a, TD_IN_##ka, da}, { b, TD_IN_##kb, db }                                                 \
    }
#define IN3(a, ka, da, b, kb, db, c, kc, dc)                                                       \
    3,                                                                                             \
    {                                                                                              \
        {a, TD_IN_##ka, da}, {b, TD_IN_##kb, db}, { c, TD_IN_##kc, dc }                            \
    }

static const td_loss_def table[] = {
    /* ---- softmax ---- */
    {"cross_entropy",
     "CrossEntropyLoss",
     "CrossEntropyLossBackward",
     TD_LOSS_SOFTMAX,
     TD_SMX_CE,
     false,
     IN2("input", SCORES, "N C", "target", CLASSES, "N"),
     false,
     {TENSOR("weight", SMX(weight)), INTEGER("ignore_index", SMX(ignore_index), -100),
      NUMBER("label_smoothing", SMX(label_smoothing), 0, IN_0_1("in [0, 1]")),
      REDUCTION(SMX(reduction), TD_REDUCE_MEAN)},
     "-sum_c w_c t_c log softmax(input)_c over class indices or probabilities"},
    {"nll_loss",
     "NLLLoss",
     "NllLossBackward",
     TD_LOSS_SOFTMAX,
     TD_SMX_NLL,
     false,
     IN2("input", LOG_PROBS, "N C", "target", CLASSES, "N"),
     false,
     {TENSOR("weight", SMX(weight)), INTEGER("ignore_index", SMX(ignore_index), -100),
      REDUCTION(SMX(reduction), TD_REDUCE_MEAN)},
     "-w_y input_y, input being log-probabilities"},
    {"focal_loss",
     "FocalLoss",
     "FocalLossBackward",
     TD_LOSS_SOFTMAX,
     TD_SMX_FOCAL,
     false,
     IN2("input", SCORES, "N C", "target", CLASSES, "N"),
     false,
     {NUMBER("gamma", SMX(gamma), 2, FINITE_GE(0, "a finite number >= 0")),
      {"alpha", TD_OPT_ALPHA, SMX(alpha), SMX(alpha_value), 1, 0, 0, 0, "a number"},
      INTEGER("ignore_index", SMX(ignore_index), -100),
      REDUCTION(SMX(reduction), TD_REDUCE_MEAN)},
     "-alpha_y (1 - p_y)^gamma log p_y, p = softmax(input)"},
    {"poly1_cross_entropy",
     "Poly1CrossEntropyLoss",
     "Poly1CrossEntropyLossBackward",
     TD_LOSS_SOFTMAX,
     TD_SMX_POLY1,
     false,
     IN2("input", SCORES, "N C", "target", CLASSES, "N"),
     false,
     {NUMBER("epsilon", SMX(epsilon), 1, FINITE_GE(-1, "a finite number >= -1")),
      TENSOR("weight", SMX(weight)), INTEGER("ignore_index", SMX(ignore_index), -100),
      NUMBER("label_smoothing", SMX(label_smoothing), 0, IN_0_1("in [0, 1]")),
      REDUCTION(SMX(reduction), TD_REDUCE_MEAN)},
     "cross_entropy + epsilon w_y (1 - p_t)"},

    {"poly1_focal_loss",
     "Poly1FocalLoss",
     "Poly1FocalLossBackward",
     TD_LOSS_SOFTMAX,
     TD_SMX_POLY1_FOCAL,
     false,
     IN2("input", SCORES, "N C", "target", CLASSES, "N"),
     false,
     {NUMBER("epsilon", SMX(epsilon), 1, FINITE_GE(-1, "a finite number >= -1")),
      NUMBER("gamma", SMX(gamma), 2, FINITE_GE(0, "a finite number >= 0")),
      {"alpha", TD_OPT_ALPHA, SMX(alpha), SMX(alpha_value), 1, 0, 0, 0, "a number"},
      INTEGER("ignore_index", SMX(ignore_index), -100),
      REDUCTION(SMX(reduction), TD_REDUCE_MEAN)},
     "focal_loss + epsilon (1 - p_y)^(gamma + 1)"},

    /* ---- binary ---- */
    {"binary_cross_entropy",
     "BCELoss",
     "BinaryCrossEntropyBackward",
     TD_LOSS_BINARY,
     TD_BIN_BCE,
     true,
     IN2("input", PROBS, "N C", "target", BINARY, "N C"),
     false,
     {TENSOR("weight", BIN(weight)), REDUCTION(BIN(reduction), TD_REDUCE_MEAN)},
     "-w (y log p + (1 - y) log(1 - p)), logs clamped at -100"},
    {"binary_cross_entropy_with_logits",
     "BCEWithLogitsLoss",
     "BinaryCrossEntropyWithLogitsBackward",
     TD_LOSS_BINARY,
     TD_BIN_BCE_LOGITS,
     true,
     IN2("input", SCORES, "N C", "target", BINARY, "N C"),
     false,
     {TENSOR("weight", BIN(weight)), TENSOR("pos_weight", BIN(pos_weight)),
      NUMBER("label_smoothing", BIN(label_smoothing), 0, IN_0_1("label_smoothing in [0, 1]")),
      REDUCTION(BIN(reduction), TD_REDUCE_MEAN)},
     "binary_cross_entropy of sigmoid(input), computed stably"},
    {"sigmoid_focal_loss",
     "SigmoidFocalLoss",
     "SigmoidFocalLossBackward",
     TD_LOSS_BINARY,
     TD_BIN_FOCAL,
     false,
     IN2("input", SCORES, "N C", "target", BINARY, "N C"),
     false,
     {NUMBER("alpha", BIN(alpha), 0.25, TD_FINITE, 0, 0, "alpha finite (negative = off)"),
      NUMBER("gamma", BIN(gamma), 2, FINITE_GE(0, "gamma >= 0 (and finite)")),
      REDUCTION(BIN(reduction), TD_REDUCE_NONE)},
     "torchvision's focal loss on sigmoid(input)"},
    {"asymmetric_loss",
     "AsymmetricLoss",
     "AsymmetricLossBackward",
     TD_LOSS_BINARY,
     TD_BIN_ASL,
     false,
     IN2("input", SCORES, "N C", "target", BINARY, "N C"),
     false,
     {NUMBER("gamma_pos", BIN(gamma_pos), 0, FINITE_GE(0, "gamma_pos >= 0 (and finite)")),
      NUMBER("gamma_neg", BIN(gamma_neg), 4, FINITE_GE(0, "gamma_neg >= 0 (and finite)")),
      NUMBER("clip", BIN(clip), 0.05, IN_0_1("clip in [0, 1]")),
      NUMBER("eps", BIN(eps), 1e-8, TD_LO_OPEN | TD_HI_OPEN, 0, 1, "eps in (0, 1)"),
      REDUCTION(BIN(reduction), TD_REDUCE_MEAN)},
     "multi-label asymmetric loss (Ridnik et al. 2021)"},
    {"multilabel_soft_margin_loss",
     "MultiLabelSoftMarginLoss",
     "MultilabelSoftMarginLossBackward",
     TD_LOSS_BINARY,
     TD_BIN_MULTILABEL,
     true,
     IN2("input", SCORES, "N C", "target", BINARY, "N C"),
     false,
     {TENSOR("weight", BIN(weight)), REDUCTION(BIN(reduction), TD_REDUCE_MEAN)},
     "binary_cross_entropy_with_logits averaged over each row's classes"},
    {"soft_margin_loss",
     "SoftMarginLoss",
     "SoftMarginLossBackward",
     TD_LOSS_BINARY,
     TD_BIN_SOFT_MARGIN,
     false,
     IN2("input", SCORES, "N C", "target", SIGNS, "N C"),
     false,
     {REDUCTION(BIN(reduction), TD_REDUCE_MEAN)},
     "log(1 + exp(-y x)), y = 1 or -1"},

    /* ---- regression ---- */
    {"mse_loss",
     "MSELoss",
     "MseLossBackward",
     TD_LOSS_REGRESSION,
     TD_REG_MSE,
     true,
     IN2("input", SCORES, "N C", "target", REAL, "N C"),
     false,
     {REDUCTION(REG(reduction), TD_REDUCE_MEAN)},
     "(input - target)^2"},
    {"l1_loss",
     "L1Loss",
     "L1LossBackward",
     TD_LOSS_REGRESSION,
     TD_REG_L1,
     true,
     IN2("input", SCORES, "N C", "target", REAL, "N C"),
     false,
     {REDUCTION(REG(reduction), TD_REDUCE_MEAN)},
     "|input - target|"},
    {"smooth_l1_loss",
     "SmoothL1Loss",
     "SmoothL1LossBackward",
     TD_LOSS_REGRESSION,
     TD_REG_SMOOTH_L1,
     true,
     IN2("input", SCORES, "N C", "target", REAL, "N C"),
     false,
     {REDUCTION(REG(reduction), TD_REDUCE_MEAN), NUMBER("beta", REG(beta), 1, TD_LO, 0, 0, ">= 0")},
     "0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta"},
    {"huber_loss",
     "HuberLoss",
     "HuberLossBackward",
     TD_LOSS_REGRESSION,
     TD_REG_HUBER,
     true,
     IN2("input", SCORES, "N C", "target", REAL, "N C"),
     false,
     {REDUCTION(REG(reduction), TD_REDUCE_MEAN),
      NUMBER("delta", REG(delta), 1, TD_LO_OPEN, 0, 0, "> 0")},
     "0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta)"},
    {"kl_div",
     "KLDivLoss",
     "KlDivBackward",
     TD_LOSS_REGRESSION,
     TD_REG_KL_DIV,
     true,
     IN2("input", LOG_PROBS, "N C", "target", PROBS, "N C"),
     true,
     {REDUCTION(REG(reduction), TD_REDUCE_MEAN), BOOLEAN("log_target", REG(log_target), 0)},
     "target (log target - input), input being log-probabilities"},
    {"poisson_nll_loss",
     "PoissonNLLLoss",
     "PoissonNllLossBackward",
     TD_LOSS_REGRESSION,
     TD_REG_POISSON_LOG,
     true,
     IN2("input", SCORES, "N C", "target", POSITIVE, "N C"),
     false,
     {REDUCTION(REG(reduction), TD_REDUCE_MEAN), BOOLEAN("log_input", REG(log_input), 1),
      BOOLEAN("full", REG(full), 0), NUMBER("eps", REG(eps), 1e-8, TD_LO_OPEN, 0, 0, "> 0")},
     "exp(input) - target input (log_input), with Stirling's term when full"},
    {"gaussian_nll_loss",
     "GaussianNLLLoss",
     "GaussianNllLossBackward",
     TD_LOSS_REGRESSION,
     TD_REG_GAUSSIAN,
     true,
     IN3("input", SCORES, "N C", "target", REAL, "N C", "var", POSITIVE, "N C"),
     false,
     {REDUCTION(REG(reduction), TD_REDUCE_MEAN), BOOLEAN("full", REG(full), 0),
      NUMBER("eps", REG(eps), 1e-6, TD_LO_OPEN, 0, 0, "> 0")},
     "0.5 (log var + (input - target)^2 / var)"},

    /* ---- ctc ---- */
    {"ctc_loss",
     "CTCLoss",
     "CtcLossBackward",
     TD_LOSS_CTC,
     0,
     false,
     4,
     {{"log_probs", TD_IN_LOG_PROBS, "T N C"},
      {"targets", TD_IN_SEQUENCES, "N S"},
      {"input_lengths", TD_IN_LENGTHS, "N"},
      {"target_lengths", TD_IN_LENGTHS, "N"}},
     false,
     {INTEGER("blank", CTC(blank), 0), REDUCTION(CTC(reduction), TD_REDUCE_MEAN),
      BOOLEAN("zero_infinity", CTC(zero_infinity), 0)},
     "connectionist temporal classification"},

    /* ---- margin ---- */
    {"multi_margin_loss",
     "MultiMarginLoss",
     "MultiMarginLossBackward",
     TD_LOSS_MARGIN,
     TD_MARGIN_MULTI,
     false,
     IN2("input", SCORES, "N C", "target", CLASSES, "N"),
     false,
     {NUMBER("p", MAR(p), 1, TD_ONE_OR_TWO, 0, 0, "1 or 2"), NUMBER("margin", MAR(margin), 1, ANY),
      TENSOR("weight", MAR(weight)), REDUCTION(MAR(reduction), TD_REDUCE_MEAN)},
     "multi-class hinge loss"},
    {"multilabel_margin_loss",
     "MultiLabelMarginLoss",
     "MultiLabelMarginLossBackward",
     TD_LOSS_MARGIN,
     TD_MARGIN_MULTILABEL,
     false,
     IN2("input", SCORES, "N C", "target", LABEL_LISTS, "N C"),
     false,
     {REDUCTION(MAR(reduction), TD_REDUCE_MEAN)},
     "multi-label hinge loss over the listed classes"},
    {"hinge_embedding_loss",
     "HingeEmbeddingLoss",
     "HingeEmbeddingLossBackward",
     TD_LOSS_MARGIN,
     TD_MARGIN_HINGE,
     false,
     IN2("input", SCORES, "N C", "target", SIGNS, "N C"),
     false,
     {NUMBER("margin", MAR(margin), 1, ANY), REDUCTION(MAR(reduction), TD_REDUCE_MEAN)},
     "x where y = 1, max(0, margin - x) where y = -1"},
    {"cosine_embedding_loss",
     "CosineEmbeddingLoss",
     "CosineEmbeddingLossBackward",
     TD_LOSS_MARGIN,
     TD_MARGIN_COSINE,
     false,
     IN3("x1", SCORES, "N D", "x2", SCORES, "N D", "target", SIGNS, "N"),
     false,
     {NUMBER("margin", MAR(margin), 0, ANY), REDUCTION(MAR(reduction), TD_REDUCE_MEAN)},
     "1 - cos(x1, x2) where y = 1, max(0, cos - margin) where y = -1"},
    {"margin_ranking_loss",
     "MarginRankingLoss",
     "MarginRankingLossBackward",
     TD_LOSS_MARGIN,
     TD_MARGIN_RANKING,
     false,
     IN3("x1", SCORES, "N", "x2", SCORES, "N", "target", SIGNS, "N"),
     false,
     {NUMBER("margin", MAR(margin), 0, ANY), REDUCTION(MAR(reduction), TD_REDUCE_MEAN)},
     "max(0, -y (x1 - x2) + margin)"},
    {"triplet_margin_loss",
     "TripletMarginLoss",
     "TripletMarginLossBackward",
     TD_LOSS_MARGIN,
     TD_MARGIN_TRIPLET,
     false,
     IN3("anchor", SCORES, "N D", "positive", SCORES, "N D", "negative", SCORES, "N D"),
     false,
     {NUMBER("margin", MAR(margin), 1, ANY),
      NUMBER("p", MAR(p), 2, TD_LO_OPEN | TD_FINITE, 0, 0, "a positive finite number"),
      NUMBER("eps", MAR(eps), 1e-6, ANY), BOOLEAN("swap", MAR(swap), 0),
      REDUCTION(MAR(reduction), TD_REDUCE_MEAN)},
     "max(0, d(a, p) - d(a, n) + margin)"},
};

#define N_LOSSES ((int)(sizeof table / sizeof table[0]))

/* the family's front-end, its options struct and how its range errors read */
static const struct {
    td_loss_front_fn run;
    size_t opts_size;
    const char *range_error; /* loss, requirement, value */
} families[TD_LOSS_NFAMILIES] = {
    [TD_LOSS_SOFTMAX] = {td_softmax_loss_run, sizeof(td_softmax_loss_opts),
                         "%s: %s must be %s, got %g"},
    [TD_LOSS_BINARY] = {td_binary_loss_run, sizeof(td_binary_loss_opts), "%s needs %.0s%s, got %g"},
    [TD_LOSS_REGRESSION] = {td_regression_loss_run, sizeof(td_regression_loss_opts),
                            "%s: %s must be %s, got %g"},
    [TD_LOSS_MARGIN] = {td_margin_loss_run, sizeof(td_margin_loss_opts),
                        "%s: %s must be %s, got %g"},
    [TD_LOSS_CTC] = {td_ctc_loss_run, sizeof(td_ctc_loss_opts), "%s: %s must be %s, got %g"},
};

int td_loss_count(void) { return N_LOSSES; }

const td_loss_def *td_loss_at(int i) { return i >= 0 && i < N_LOSSES ? &table[i] : NULL; }

const td_loss_def *td_loss_find(const char *name)
{
    for (int i = 0; i < N_LOSSES; i++)
        if (strcmp(table[i].name, name) == 0 || strcmp(table[i].module, name) == 0)
            return &table[i];
    return NULL;
}

size_t td_loss_opts_size(td_loss_family f)
{
    return (unsigned)f < TD_LOSS_NFAMILIES ? families[f].opts_size : 0;
}

void td_loss_defaults(const td_loss_def *d, void *opts)
{
    memset(opts, 0, families[d->family].opts_size);
    char *base = opts;
    for (const td_loss_opt *o = d->opts; o->name; o++) {
        switch (o->type) {
        case TD_OPT_NUMBER: *(double *)(base + o->offset) = o->def; break;
        case TD_OPT_INTEGER: *(int64_t *)(base + o->offset) = (int64_t)o->def; break;
        case TD_OPT_BOOLEAN: *(bool *)(base + o->offset) = o->def != 0; break;
        case TD_OPT_TENSOR: *(td_tensor **)(base + o->offset) = NULL; break;
        case TD_OPT_ALPHA:
            *(td_tensor **)(base + o->offset) = NULL;
            *(double *)(base + o->offset2) = o->def;
            break;
        case TD_OPT_REDUCTION: *(td_reduction *)(base + o->offset) = (td_reduction)o->def; break;
        }
    }
}

static bool in_range(const td_loss_opt *o, double v)
{
    if (isnan(v)) return false;
    if ((o->range & TD_FINITE) && isinf(v)) return false;
    if ((o->range & TD_LO) && !(v >= o->lo)) return false;
    if ((o->range & TD_LO_OPEN) && !(v > o->lo)) return false;
    if ((o->range & TD_HI) && !(v <= o->hi)) return false;
    if ((o->range & TD_HI_OPEN) && !(v < o->hi)) return false;
    if ((o->range & TD_ONE_OR_TWO) && v != 1 && v != 2) return false;
    return true;
}

td_status td_loss_check_opts(const td_loss_def *d, const void *opts)
{
    const char *base = opts;
    int arg = d->n_inputs + 1;
    for (const td_loss_opt *o = d->opts; o->name; o++) {
        if (o->type == TD_OPT_REDUCTION) {
            td_reduction r = *(const td_reduction *)(base + o->offset);
            if ((unsigned)r > TD_REDUCE_BATCHMEAN || (r == TD_REDUCE_BATCHMEAN && !d->batchmean))
                return td_error(TD_EINVAL, arg, "%s: reduction '%s' is not allowed (expected %s)",
                                d->name, td_reduction_name(r),
                                d->batchmean ? "'none', 'mean', 'sum' or 'batchmean'"
                                             : "'none', 'mean' or 'sum'");
            continue;
        }
        if (!o->says) continue;
        double v = *(const double *)(base + (o->type == TD_OPT_ALPHA ? o->offset2 : o->offset));
        if (o->type == TD_OPT_ALPHA && *(td_tensor *const *)(base + o->offset)) continue;
        if (!in_range(o, v))
            return td_error(TD_EINVAL, arg, families[d->family].range_error, d->name, o->name,
                            o->says, v);
    }
    return TD_OK;
}

bool td_loss_on_device(const td_loss_def *d, td_device dev)
{
    const td_backend *be = td_backend_for(dev);
    if (!be) return false;
    switch (d->family) {
    case TD_LOSS_SOFTMAX: return be->softmax_loss != NULL;
    case TD_LOSS_BINARY: return be->binary_loss != NULL;
    case TD_LOSS_REGRESSION: return be->regression_loss != NULL;
    case TD_LOSS_MARGIN: return be->margin_loss != NULL;
    case TD_LOSS_CTC: return be->ctc_loss != NULL;
    default: return false;
    }
}

/* the option tensor of row o in opts, or NULL */
static td_tensor **opt_tensor(const td_loss_opt *o, void *opts)
{
    if (o->type != TD_OPT_TENSOR && o->type != TD_OPT_ALPHA) return NULL;
    return (td_tensor **)((char *)opts + o->offset);
}

static bool has_lowp(const td_loss_def *d, td_tensor *const *inputs, const void *opts)
{
    for (int i = 0; i < d->n_inputs; i++)
        if (inputs[i] && td_dtype_is_lowp(inputs[i]->dtype)) return true;
    for (const td_loss_opt *o = d->opts; o->name; o++) {
        td_tensor **t = opt_tensor(o, (void *)opts);
        if (t && *t && td_dtype_is_lowp((*t)->dtype)) return true;
    }
    return false;
}

/* bfloat16 and float16 inputs (logits, targets, weights) are widened and
 * the loss computed and returned in float32, as PyTorch's autocast runs
 * its losses: a loss is where low precision's range and rounding would
 * harm most (exp of a logit, a log near 0). The widening is recorded, so
 * the logits' gradient comes back in their dtype. */
static td_status run_in_float32(const td_loss_def *d, td_tensor *const *inputs, const void *opts,
                                td_tensor **out)
{
    td_tensor *in[TD_LOSS_MAX_INPUTS] = {0}, *held[TD_LOSS_MAX_OPTS] = {0};
    td_any_loss_opts o32;
    memcpy(&o32, opts, families[d->family].opts_size);
    TD_TRY(td_autocast_float32(d->n_inputs, inputs, in));
    td_status st = TD_OK;
    int n_held = 0;
    for (const td_loss_opt *o = d->opts; o->name && st == TD_OK; o++) {
        td_tensor **t = opt_tensor(o, &o32);
        if (!t || !*t) continue;
        st = td_autocast_float32(1, t, &held[n_held]);
        if (st == TD_OK) *t = held[n_held++];
    }
    if (st == TD_OK) st = td_loss_run(d, in, &o32, out);
    td_autocast_release(n_held, held);
    td_autocast_release(d->n_inputs, in);
    return st;
}

td_status td_loss_run(const td_loss_def *d, td_tensor *const *inputs, const void *opts,
                      td_tensor **out)
{
    td_any_loss_opts def; /* the defaults when opts is NULL */
    if (!opts) {
        td_loss_defaults(d, &def);
        opts = &def;
    }
    TD_TRY(td_loss_check_opts(d, opts));
    if (has_lowp(d, inputs, opts)) return run_in_float32(d, inputs, opts, out);
    td_device dev = td_device_of(inputs[0]);
    if (!td_loss_on_device(d, dev)) {
        const td_backend *be = td_backend_for(dev);
        char buf[32];
        return td_error(TD_EINVAL, 1, "%s is not implemented on %s yet", d->name,
                        be ? be->name : td_device_str(dev, buf, sizeof buf));
    }
    return families[d->family].run(d, inputs, opts, out);
}

td_status td_loss_call(const char *name, td_tensor *const *inputs, const void *opts,
                       td_tensor **out)
{
    const td_loss_def *d = td_loss_find(name);
    if (!d) return td_error(TD_EINVAL, 0, "unknown loss '%s'", name);
    return td_loss_run(d, inputs, opts, out);
}

/* ---- the C API's one function per loss ------------------------------------------ */

#define LOSS2(fn, T)                                                                               \
    td_status td_##fn(td_tensor *a, td_tensor *b, const T *o, td_tensor **out)                     \
    {                                                                                              \
        td_tensor *in[2] = {a, b};                                                                 \
        return td_loss_call(#fn, in, o, out);                                                      \
    }
#define LOSS3(fn, T)                                                                               \
    td_status td_##fn(td_tensor *a, td_tensor *b, td_tensor *c, const T *o, td_tensor **out)       \
    {                                                                                              \
        td_tensor *in[3] = {a, b, c};                                                              \
        return td_loss_call(#fn, in, o, out);                                                      \
    }

LOSS2(cross_entropy, td_softmax_loss_opts)
LOSS2(nll_loss, td_softmax_loss_opts)
LOSS2(focal_loss, td_softmax_loss_opts)
LOSS2(poly1_cross_entropy, td_softmax_loss_opts)
LOSS2(binary_cross_entropy, td_binary_loss_opts)
LOSS2(binary_cross_entropy_with_logits, td_binary_loss_opts)
LOSS2(sigmoid_focal_loss, td_binary_loss_opts)
LOSS2(asymmetric_loss, td_binary_loss_opts)
LOSS2(multilabel_soft_margin_loss, td_binary_loss_opts)
LOSS2(soft_margin_loss, td_binary_loss_opts)
LOSS2(mse_loss, td_regression_loss_opts)
LOSS2(l1_loss, td_regression_loss_opts)
LOSS2(smooth_l1_loss, td_regression_loss_opts)
LOSS2(huber_loss, td_regression_loss_opts)
LOSS2(kl_div, td_regression_loss_opts)
LOSS2(poisson_nll_loss, td_regression_loss_opts)
LOSS3(gaussian_nll_loss, td_regression_loss_opts)
LOSS2(multi_margin_loss, td_margin_loss_opts)
LOSS2(multilabel_margin_loss, td_margin_loss_opts)
LOSS2(hinge_embedding_loss, td_margin_loss_opts)
LOSS3(cosine_embedding_loss, td_margin_loss_opts)
LOSS3(margin_ranking_loss, td_margin_loss_opts)
LOSS3(triplet_margin_loss, td_margin_loss_opts)

td_status td_ctc_loss(td_tensor *log_probs, td_tensor *targets, td_tensor *input_lengths,
                      td_tensor *target_lengths, const td_ctc_loss_opts *o, td_tensor **out)
{
    td_tensor *in[4] = {log_probs, targets, input_lengths, target_lengths};
    return td_loss_call("ctc_loss", in, o, out);
}
