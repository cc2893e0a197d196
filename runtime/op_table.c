/* The elementwise op table (see tide/tide.h): each unary and binary op's
 * Lua name, node name, sample domain and summary, in one place. */
#include "internal.h"

#define UNARY(name, node, op, dom, sum)                                                            \
    {                                                                                              \
        name, node, 1, op, TD_DOMAIN_##dom, sum                                                    \
    }
#define BINARY(name, node, op, dom, sum)                                                           \
    {                                                                                              \
        name, node, 2, op, TD_DOMAIN_##dom, sum                                                    \
    }

static const td_op_def table[] = {
    UNARY("exp", "ExpBackward", TD_EXP, REAL, "e^x"),
    UNARY("log", "LogBackward", TD_LOG, POSITIVE, "natural logarithm"),
    UNARY("log1p", "Log1pBackward", TD_LOG1P, POSITIVE, "log(1 + x), exact for small x"),
    UNARY("sqrt", "SqrtBackward", TD_SQRT, POSITIVE, "square root"),
    UNARY("abs", "AbsBackward", TD_ABS, OFF_KINK, "|x|"),
    UNARY("neg", "NegBackward", TD_NEG, REAL, "-x"),
    UNARY("sin", "SinBackward", TD_SIN, REAL, "sine"),
    UNARY("cos", "CosBackward", TD_COS, REAL, "cosine"),
    UNARY("tanh", "TanhBackward", TD_TANH, REAL, "hyperbolic tangent"),
    UNARY("sigmoid", "SigmoidBackward", TD_SIGMOID, REAL, "1 / (1 + e^-x)"),
    UNARY("relu", "ReluBackward", TD_RELU, OFF_KINK, "max(x, 0)"),
    UNARY("gelu", "GeluBackward", TD_GELU, REAL, "x Phi(x), the exact GELU"),
    UNARY("sign", "SignBackward", TD_SIGN, OFF_KINK, "-1, 0 or 1 (gradient 0)"),
    UNARY("reciprocal", "ReciprocalBackward", TD_RECIPROCAL, POSITIVE, "1 / x"),
    UNARY("square", "SquareBackward", TD_SQUARE, REAL, "x^2"),
    UNARY("floor", "FloorBackward", TD_FLOOR, OFF_INTEGER, "largest integer <= x (gradient 0)"),
    UNARY("ceil", "CeilBackward", TD_CEIL, OFF_INTEGER, "smallest integer >= x (gradient 0)"),
    UNARY("round", "RoundBackward", TD_ROUND, OFF_INTEGER,
          "nearest integer, halves to even (gradient 0)"),
    UNARY("trunc", "TruncBackward", TD_TRUNC, OFF_INTEGER, "x rounded toward 0 (gradient 0)"),
    UNARY("isnan", NULL, TD_ISNAN, REAL, "x is NaN, uint8"),
    UNARY("isinf", NULL, TD_ISINF, REAL, "x is +-inf, uint8"),
    UNARY("isfinite", NULL, TD_ISFINITE, REAL, "x is neither NaN nor +-inf, uint8"),
    BINARY("add", "AddBackward", TD_ADD, REAL, "a + alpha b"),
    BINARY("sub", "SubBackward", TD_SUB, REAL, "a - alpha b"),
    BINARY("mul", "MulBackward", TD_MUL, REAL, "a b"),
    BINARY("div", "DivBackward", TD_DIV, POSITIVE, "a / b"),
    BINARY("pow", "PowBackward", TD_POW, POSITIVE, "a^b"),
    BINARY("maximum", "MaximumBackward", TD_MAXIMUM, REAL,
           "elementwise max (ties split the gradient)"),
    BINARY("minimum", "MinimumBackward", TD_MINIMUM, REAL,
           "elementwise min (ties split the gradient)"),
    BINARY("eq", NULL, TD_EQ, REAL, "a == b, uint8"),
    BINARY("ne", NULL, TD_NE, REAL, "a ~= b, uint8"),
    BINARY("lt", NULL, TD_LT, REAL, "a < b, uint8"),
    BINARY("le", NULL, TD_LE, REAL, "a <= b, uint8"),
    BINARY("gt", NULL, TD_GT, REAL, "a > b, uint8"),
    BINARY("ge", NULL, TD_GE, REAL, "a >= b, uint8"),
};

#define N_OPS ((int)(sizeof table / sizeof table[0]))

int td_op_count(void) { return N_OPS; }

const td_op_def *td_op_at(int i) { return i >= 0 && i < N_OPS ? &table[i] : NULL; }

const td_op_def *td_op_find(const char *name)
{
    for (int i = 0; i < N_OPS; i++)
        if (strcmp(table[i].name, name) == 0) return &table[i];
    return NULL;
}

static const td_op_def *find(int arity, int op)
{
    for (int i = 0; i < N_OPS; i++)
        if (table[i].arity == arity && table[i].op == op) return &table[i];
    return NULL;
}

const td_op_def *td_unary_def(td_unary_op op) { return find(1, op); }

const td_op_def *td_binary_def(td_binary_op op) { return find(2, op); }
