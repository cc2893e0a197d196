/* The elementwise op table (see tide/tide.h): each unary and binary op's
 * Lua name, node name, sample domain, summary and parameters, in one place. */
#include "internal.h"

#define UNARY(name_, node_, op_, dom, sum)                                                         \
    {                                                                                              \
        .name = name_, .node = node_, .arity = 1, .op = op_, .domain = TD_DOMAIN_##dom,            \
        .summary = sum                                                                             \
    }
#define BINARY(name_, node_, op_, dom, sum)                                                        \
    {                                                                                              \
        .name = name_, .node = node_, .arity = 2, .op = op_, .domain = TD_DOMAIN_##dom,            \
        .summary = sum                                                                             \
    }
/* an activation: where the binding puts it, and its parameters as P(...)
 * and REQUIRED(...) in PyTorch's order */
#define ACT(name_, node_, op_, dom, scope_, sum, ...)                                              \
    {                                                                                              \
        .name = name_, .node = node_, .arity = 1, .op = op_, .domain = TD_DOMAIN_##dom,            \
        .summary = sum, .scope = TD_SCOPE_##scope_, .params = {                                    \
            __VA_ARGS__                                                                            \
        }                                                                                          \
    }
#define P(name_, value_)                                                                           \
    {                                                                                              \
        .name = name_, .value = value_                                                             \
    }
#define REQUIRED(name_, typical)                                                                   \
    {                                                                                              \
        .name = name_, .value = typical, .required = true                                          \
    }

static const char *const gelu_approximate[] = {"none", "tanh", NULL};

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
    ACT("gelu", "GeluBackward", TD_GELU, REAL, TENSOR,
        "x Phi(x); approximate = \"tanh\": 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))",
        {.name = "approximate", .choices = gelu_approximate}),
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
    UNARY("rsqrt", "RsqrtBackward", TD_RSQRT, POSITIVE, "1 / sqrt(x)"),
    UNARY("tan", "TanBackward", TD_TAN, UNIT, "tangent"),
    UNARY("asin", "AsinBackward", TD_ASIN, UNIT, "arcsine"),
    UNARY("acos", "AcosBackward", TD_ACOS, UNIT, "arccosine"),
    UNARY("atan", "AtanBackward", TD_ATAN, REAL, "arctangent"),
    UNARY("sinh", "SinhBackward", TD_SINH, REAL, "hyperbolic sine"),
    UNARY("cosh", "CoshBackward", TD_COSH, REAL, "hyperbolic cosine"),
    UNARY("asinh", "AsinhBackward", TD_ASINH, REAL, "inverse hyperbolic sine"),
    UNARY("acosh", "AcoshBackward", TD_ACOSH, ABOVE_ONE, "inverse hyperbolic cosine"),
    UNARY("atanh", "AtanhBackward", TD_ATANH, UNIT, "inverse hyperbolic tangent"),
    UNARY("logical_not", NULL, TD_LOGICAL_NOT, REAL, "x == 0, uint8, from any dtype"),
    ACT("elu", "EluBackward", TD_ELU, REAL, F, "x > 0 ? x : alpha (e^x - 1)", P("alpha", 1.0)),
    ACT("selu", "SeluBackward", TD_SELU, REAL, BOTH,
        "scale (x > 0 ? x : alpha (e^x - 1)), PyTorch's fixed scale and alpha"),
    ACT("celu", "CeluBackward", TD_CELU, REAL, BOTH, "max(0, x) + min(0, alpha (e^(x/alpha) - 1))",
        P("alpha", 1.0)),
    ACT("silu", "SiluBackward", TD_SILU, REAL, F, "x sigmoid(x)"),
    ACT("mish", "MishBackward", TD_MISH, REAL, F, "x tanh(softplus(x))"),
    ACT("relu6", "Relu6Backward", TD_RELU6, OFF_KINK, F, "min(max(x, 0), 6)"),
    ACT("hardtanh", "HardtanhBackward", TD_HARDTANH, REAL, F, "min(max(x, min_val), max_val)",
        P("min_val", -1.0), P("max_val", 1.0)),
    ACT("hardswish", "HardswishBackward", TD_HARDSWISH, REAL, F, "x relu6(x + 3) / 6"),
    ACT("hardsigmoid", "HardsigmoidBackward", TD_HARDSIGMOID, REAL, F, "relu6(x + 3) / 6"),
    ACT("softplus", "SoftplusBackward", TD_SOFTPLUS, REAL, F,
        "log(1 + e^(beta x)) / beta, and x where beta x > threshold", P("beta", 1.0),
        P("threshold", 20.0)),
    ACT("softsign", "SoftsignBackward", TD_SOFTSIGN, REAL, F, "x / (1 + |x|)"),
    ACT("logsigmoid", "LogSigmoidBackward", TD_LOGSIGMOID, REAL, F, "log(sigmoid(x)), stable"),
    ACT("threshold", "ThresholdBackward", TD_THRESHOLD, REAL, BOTH, "x > threshold ? x : value",
        REQUIRED("threshold", 0.25), REQUIRED("value", -2.0)),
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
    BINARY("logical_and", NULL, TD_LOGICAL_AND, REAL, "a ~= 0 and b ~= 0, uint8, any dtypes"),
    BINARY("logical_or", NULL, TD_LOGICAL_OR, REAL, "a ~= 0 or b ~= 0, uint8, any dtypes"),
    BINARY("logical_xor", NULL, TD_LOGICAL_XOR, REAL,
           "exactly one of a, b nonzero, uint8, any dtypes"),
    BINARY("atan2", "Atan2Backward", TD_ATAN2, REAL, "the angle of the point (b, a), in (-pi, pi]"),
};

#define N_OPS ((int)(sizeof table / sizeof table[0]))

int td_op_count(void) { return N_OPS; }

int td_op_nparams(const td_op_def *d)
{
    int n = 0;
    while (n < TD_OP_MAX_PARAMS && d->params[n].name) n++;
    return n;
}

void td_op_param_values(const td_op_def *d, double *p)
{
    for (int i = 0; i < TD_OP_MAX_PARAMS; i++) p[i] = i < td_op_nparams(d) ? d->params[i].value : 0;
}

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
