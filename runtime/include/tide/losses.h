/* Losses: what every loss front-end shares, and the loss table. Each
 * family declares its functions in its own header, included below. */
#ifndef TIDE_LOSSES_H
#define TIDE_LOSSES_H

#include "tide/tide.h"

/* "none" | "mean" | "sum" (| "batchmean" where allowed); arg names the
 * argument in errors */
td_status td_reduction_parse(const char *name, bool allow_batchmean, int arg, td_reduction *out);
const char *td_reduction_name(td_reduction r);
/* sum of every element of a loss buffer in a fixed pairwise order (the same
 * bits at any thread count), divided by `divisor` for TD_REDUCE_MEAN (and
 * BATCHMEAN); a 0-dim tensor of elem's dtype. Records no gradient. */
td_status td_loss_reduce_raw(td_tensor *elem, td_reduction r, double divisor, td_tensor **out);

/* ---- the loss table ------------------------------------------------------------ */
/* The loss table: one row per loss, the only home of its name, module
 * name, inputs, options, defaults and ranges. The Lua binding registers
 * every row, the nn modules are built from it, help and the docs check
 * read it, and the table-driven tests walk it. A sibling loss is a row
 * here, a kernel branch, a docs section and reference cases.
 *
 * Options live in one struct per family (td_softmax_loss_opts, ...): a row
 * lists the fields its loss reads, with their defaults and ranges, and
 * td_loss_defaults / td_loss_check_opts apply them. */

typedef enum {
    TD_LOSS_SOFTMAX,    /* logits (N, C, ...) and class indices or probabilities */
    TD_LOSS_BINARY,     /* elementwise against a target in [0, 1] or {-1, 1} */
    TD_LOSS_REGRESSION, /* elementwise against a real target, broadcasting */
    TD_LOSS_MARGIN,     /* margin and embedding losses */
    TD_LOSS_CTC,        /* sequences */
    TD_LOSS_NFAMILIES
} td_loss_family;

typedef enum {
    TD_OPT_NUMBER,    /* double */
    TD_OPT_INTEGER,   /* int64_t */
    TD_OPT_BOOLEAN,   /* bool */
    TD_OPT_TENSOR,    /* td_tensor *, NULL by default */
    TD_OPT_ALPHA,     /* a number (double at offset2) or a tensor (at offset) */
    TD_OPT_REDUCTION, /* td_reduction, from its name */
} td_opt_type;

/* range flags: NaN is always refused */
enum {
    TD_LO = 1,      /* value >= lo */
    TD_LO_OPEN = 2, /* value > lo */
    TD_HI = 4,      /* value <= hi */
    TD_HI_OPEN = 8, /* value < hi */
    TD_FINITE = 16, /* no infinities */
    TD_ONE_OR_TWO = 32,
};

typedef struct {
    const char *name;
    td_opt_type type;
    size_t offset, offset2;
    double def; /* numbers, integers, booleans (0/1), reductions (td_reduction) */
    unsigned range;
    double lo, hi;
    const char *says; /* the range in words, for errors: "in [0, 1]" */
} td_loss_opt;

/* what an input holds: the binding reads TD_IN_LENGTHS from a Lua list
 * too, and the table-driven tests make samples of each kind */
typedef enum {
    TD_IN_SCORES,      /* float, any real: logits, embeddings, predictions */
    TD_IN_LOG_PROBS,   /* float log-probabilities over the class dim */
    TD_IN_PROBS,       /* float in [0, 1] */
    TD_IN_CLASSES,     /* int64 class indices (input without its class dim) */
    TD_IN_BINARY,      /* float in [0, 1], input's shape */
    TD_IN_SIGNS,       /* float, 1 or -1 */
    TD_IN_REAL,        /* float, input's shape */
    TD_IN_POSITIVE,    /* float > 0 (variances, counts) */
    TD_IN_LABEL_LISTS, /* int64 (N, C) class indices ended by -1 */
    TD_IN_SEQUENCES,   /* int64 (N, S) padded target sequences */
    TD_IN_LENGTHS,     /* int64 (N), or a Lua list of integers */
} td_loss_input_kind;

typedef struct {
    const char *name; /* "input", "target", "var", ... as errors and docs say */
    td_loss_input_kind kind;
    const char *dims; /* its usual shape, for samples and help: "N C", "T N C" */
} td_loss_input;

#define TD_LOSS_MAX_INPUTS 4
#define TD_LOSS_MAX_OPTS   8

typedef struct td_loss_def {
    const char *name;   /* "cross_entropy": tide.F.cross_entropy */
    const char *module; /* "CrossEntropyLoss": tide.nn.CrossEntropyLoss */
    const char *node;   /* "CrossEntropyLossBackward": its autograd node */
    td_loss_family family;
    int kind;         /* the family's own kind */
    bool target_grad; /* a gradient flows to the second input too */
    int n_inputs;
    td_loss_input inputs[TD_LOSS_MAX_INPUTS];
    bool batchmean;                     /* "batchmean" is a reduction here */
    td_loss_opt opts[TD_LOSS_MAX_OPTS]; /* ended by a NULL name */
    const char *summary;                /* one line, for help */
} td_loss_def;

/* ---- one options struct per family ----------------------------------------- */

typedef struct {
    td_tensor *weight;  /* (C) class weights; NULL = all 1 */
    td_tensor *alpha;   /* focal: (C) per-class alpha, or NULL to use alpha_value */
    double alpha_value; /* focal: one alpha for every class */
    int64_t ignore_index;
    double label_smoothing;
    double gamma;   /* focal */
    double epsilon; /* poly */
    td_reduction reduction;
} td_softmax_loss_opts;

typedef struct {
    td_tensor *weight;     /* broadcasts to input */
    td_tensor *pos_weight; /* broadcasts on the last (class) dim */
    double label_smoothing;
    double alpha, gamma;                    /* sigmoid focal; alpha negative = off */
    double gamma_pos, gamma_neg, clip, eps; /* asymmetric */
    td_reduction reduction;
} td_binary_loss_opts;

typedef struct {
    td_reduction reduction;
    double beta;  /* smooth_l1 */
    double delta; /* huber */
    bool log_target;
    bool log_input, full;
    double eps;
} td_regression_loss_opts;

typedef struct {
    double p; /* multi_margin: 1 or 2; triplet: the norm degree */
    double margin;
    td_tensor *weight; /* multi_margin: (C) */
    double eps;        /* triplet */
    bool swap;         /* triplet */
    td_reduction reduction;
} td_margin_loss_opts;

typedef struct {
    int64_t blank;
    td_reduction reduction;
    bool zero_infinity;
} td_ctc_loss_opts;

/* room for any family's options (a caller that does not know the family
 * ahead, as the binding) */
typedef union {
    td_softmax_loss_opts softmax;
    td_binary_loss_opts binary;
    td_regression_loss_opts regression;
    td_margin_loss_opts margin;
    td_ctc_loss_opts ctc;
} td_any_loss_opts;

/* the struct a family's losses take (any of the above) */
size_t td_loss_opts_size(td_loss_family f);

/* ---- the table --------------------------------------------------------------- */

int td_loss_count(void);
const td_loss_def *td_loss_at(int i);
/* by function name ("cross_entropy") or module name ("CrossEntropyLoss");
 * NULL when there is none */
const td_loss_def *td_loss_find(const char *name);
/* fill opts (the family's struct) with the row's defaults */
void td_loss_defaults(const td_loss_def *d, void *opts);
/* every option against its range; errors name the options argument */
td_status td_loss_check_opts(const td_loss_def *d, const void *opts);
/* true when dev's backend has this loss's family */
bool td_loss_on_device(const td_loss_def *d, td_device dev);
/* the loss on its inputs (d->n_inputs of them) with opts (the family's
 * struct; NULL = the defaults): options checked, then the family's
 * front-end, one autograd node */
td_status td_loss_run(const td_loss_def *d, td_tensor *const *inputs, const void *opts,
                      td_tensor **out);
/* td_loss_run by name */
td_status td_loss_call(const char *name, td_tensor *const *inputs, const void *opts,
                       td_tensor **out);

#include "tide/loss_binary.h"
#include "tide/loss_ctc.h"
#include "tide/loss_margin.h"
#include "tide/loss_regression.h"
#include "tide/loss_softmax.h"

#endif
