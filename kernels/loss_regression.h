/* Kernels of the regression losses: one table per backend.
 *
 * One elementwise forward and one elementwise backward serve the whole
 * family; an op code picks the loss. Operands are views of out's shape
 * (broadcast operands have stride 0); out and gin are contiguous. Every
 * element is computed on its own, so the results do not depend on how the
 * work is split over threads. */
#ifndef TIDE_KERNELS_LOSS_REGRESSION_H
#define TIDE_KERNELS_LOSS_REGRESSION_H

#include "tide/core.h"

typedef enum {
    TD_REG_MSE,         /* d^2, d = x - y */
    TD_REG_L1,          /* |d| */
    TD_REG_SMOOTH_L1,   /* 0.5 d^2 / beta if |d| < beta, else |d| - 0.5 beta (param = beta) */
    TD_REG_HUBER,       /* 0.5 d^2 if |d| < delta, else delta (|d| - 0.5 delta) (param = delta) */
    TD_REG_KL_DIV,      /* xlogy(y, y) - y x */
    TD_REG_KL_DIV_LOG,  /* e^y (y - x) */
    TD_REG_POISSON_LOG, /* e^x - y x [+ stirling(y) where y > 1 if full] */
    TD_REG_POISSON,     /* x - y log(x + eps) [+ stirling] (param = eps) */
    TD_REG_GAUSSIAN, /* 0.5 (log v + d^2 / v) [+ 0.5 log 2 pi], v = max(var, eps) (param = eps) */
} td_regression_op;

typedef struct {
    td_regression_op op;
    double param; /* beta, delta or eps, as the op says */
    bool full;    /* poisson and gaussian: the constant terms */
    double scale; /* backward only: gin = scale * g * dloss/d(wrt) */
} td_regression_args;

/* which argument a backward call differentiates by */
typedef enum { TD_REG_WRT_INPUT, TD_REG_WRT_TARGET, TD_REG_WRT_VAR } td_regression_wrt;

struct td_regression_loss_kernels {
    /* out = loss(x, y) element by element; v is var for TD_REG_GAUSSIAN
     * (NULL otherwise). x, y, v are views of out's shape, same float dtype */
    void (*forward)(const td_regression_args *a, td_tensor *out, const td_tensor *x,
                    const td_tensor *y, const td_tensor *v);
    /* gin = scale * g * dloss/d(wrt), element by element, g a view of gin's
     * shape. For TD_REG_GAUSSIAN, x is d = input - target and y is var
     * (unclamped); for the other ops x and y are input and target. */
    void (*backward)(const td_regression_args *a, td_regression_wrt wrt, td_tensor *gin,
                     const td_tensor *g, const td_tensor *x, const td_tensor *y);
    /* the number of elements of x (any strides) below bound; NaN is not */
    int64_t (*count_below)(const td_tensor *x, double bound);
};

#endif
