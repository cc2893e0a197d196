/* The activations' and the inverse and hyperbolic functions' formulas, as
 * expressions that kernels/cpu/elementwise.c splices into its loops (see
 * there why they are macros). Each reads x (and g, the incoming gradient,
 * for the _GRAD forms) of the loop's type T, and p0, p1: the op's
 * parameters in the op table's order, already of type T.
 *
 * The formulas and their edge cases are PyTorch 1.13's CPU kernels':
 * which side of a comparison a boundary point and NaN fall on, and where
 * a branch replaces a formula that would overflow. */
#ifndef TIDE_KERNELS_CPU_ACTIVATION_MATH_H
#define TIDE_KERNELS_CPU_ACTIVATION_MATH_H

/* Klambauer et al. 2017, the digits PyTorch uses */
#define SELU_ALPHA 1.6732632423543772848170429916717
#define SELU_SCALE 1.0507009873554804934193349852946

/* elu, selu and celu are one formula (PyTorch's elu kernel): x <= 0 takes
 * the exponential side, so NaN comes out of the linear one and the slope
 * at 0 is the exponential's. e^x - 1 as PyTorch writes it (not expm1),
 * which also keeps float32 on the vectorised exp */
#define ELU_(x, neg, in, pos) ((x) <= 0 ? (T)(neg) * (EXPV((x) * (T)(in)) - (T)1) : (x) * (T)(pos))
#define ELU_GRAD_(x, neg, in, pos)                                                                 \
    ((x) <= 0 ? g * (T)(neg) * (T)(in)*exp((x) * (T)(in)) : g * (T)(pos))
#define ELU(x)       ELU_(x, p0, 1, 1)
#define ELU_GRAD(x)  ELU_GRAD_(x, p0, 1, 1)
#define SELU(x)      ELU_(x, SELU_ALPHA *SELU_SCALE, 1, SELU_SCALE)
#define SELU_GRAD(x) ELU_GRAD_(x, SELU_ALPHA *SELU_SCALE, 1, SELU_SCALE)
#define CELU(x)      ELU_(x, p0, (T)1 / p0, 1)
#define CELU_GRAD(x) ((x) <= 0 ? g * exp((x) / p0) : g)

#define SILU(x)      ((x)*SIGMOID(x))
#define SILU_GRAD(x) (g * SIGMOID(x) * ((T)1 + (x) * ((T)1 - SIGMOID(x))))

/* log1p(exp(x)) is inf past exp's range, and tanh(inf) = 1 gives x */
#define SOFTPLUS1(x) log1p(EXPV(x))
#define MISH(x)      ((x)*tanh(SOFTPLUS1(x)))
#define MISH_GRAD(x)                                                                               \
    (g * (tanh(SOFTPLUS1(x)) + (x)*SIGMOID(x) * ((T)1 - tanh(SOFTPLUS1(x)) * tanh(SOFTPLUS1(x)))))

/* clamps keep NaN: it fails both tests; min > max gives max everywhere,
 * as PyTorch's min(max(x, lo), hi) */
#define CLAMP_(x, lo, hi)      ((x) < (lo) ? ((lo) > (hi) ? (hi) : (lo)) : (x) > (hi) ? (hi) : (x))
#define CLAMP_GRAD_(x, lo, hi) (((x) <= (lo) || (x) >= (hi)) ? (T)0 : g)
#define RELU6(x)               CLAMP_(x, (T)0, (T)6)
#define RELU6_GRAD(x)          CLAMP_GRAD_(x, (T)0, (T)6)
#define HARDTANH(x)            CLAMP_(x, p0, p1)
#define HARDTANH_GRAD(x)       CLAMP_GRAD_(x, p0, p1)

#define HARDSIGMOID(x)         (CLAMP_((x) + (T)3, (T)0, (T)6) / (T)6)
/* PyTorch's backward multiplies by 1/6 rounded to float, in float64 too */
#define HARDSIGMOID_GRAD(x) (((x) > (T)-3 && (x) < (T)3) ? g * (T)(1.0f / 6.0f) : (T)0)
#define HARDSWISH(x)        ((x)*CLAMP_((x) + (T)3, (T)0, (T)6) / (T)6)
#define HARDSWISH_GRAD(x)   ((x) < (T)-3 ? (T)0 : (x) <= (T)3 ? g * ((x) / (T)3 + (T)0.5) : g)

/* p0 = beta, p1 = threshold: linear where beta x > threshold */
#define SOFTPLUS(x)      ((x)*p0 > p1 ? (x) : log1p(EXPV((x)*p0)) / p0)
#define SOFTPLUS_GRAD(x) ((x)*p0 > p1 ? g : g * EXPV((x)*p0) / (EXPV((x)*p0) + (T)1))

/* the gradient PyTorch's autograd takes through x / (|x| + 1), so that
 * +-inf gives NaN as there */
#define SOFTSIGN(x) ((x) / (fabs(x) + (T)1))
#define SOFTSIGN_GRAD(x)                                                                           \
    (g / (fabs(x) + (T)1) - g * (x) / ((fabs(x) + (T)1) * (fabs(x) + (T)1)) * SIGN(x))

/* min(x, 0) - log1p(e^-|x|): no overflow either way */
#define LOGSIGMOID(x) (((x) < 0 ? (x) : (T)0) - log1p(EXPV(-fabs(x))))
#define LOGSIGMOID_GRAD(x)                                                                         \
    (g * ((x) < 0 ? (T)1 - EXPV(-fabs(x)) / ((T)1 + EXPV(-fabs(x)))                                \
                  : EXPV(-fabs(x)) / ((T)1 + EXPV(-fabs(x)))))

/* p0 = threshold, p1 = value */
#define THRESHOLD(x)      ((x) <= p0 ? p1 : (x))
#define THRESHOLD_GRAD(x) ((x) <= p0 ? (T)0 : g)

/* gelu's tanh form (p0 = 1): sqrt(2/pi) and 0.044715, as PyTorch. With
 * u the inner term, (1 + tanh(u)) / 2 = sigmoid(2u) and 1 - tanh(u)^2 =
 * 4 s (1 - s): the same values through the vectorised exp, where libm's
 * tanh runs a scalar call per element (8x slower in float32) */
#define GELU_BETA     0.79788456080286535588
#define GELU_KAPPA    0.044715
#define GELU_INNER(x) ((T)GELU_BETA * ((x) + (T)GELU_KAPPA * (x) * (x) * (x)))
#define GELU_TANH(x)  ((x)*SIGMOID((T)2 * GELU_INNER(x)))
#define GELU_TANH_GRAD(x)                                                                          \
    (g * (SIGMOID((T)2 * GELU_INNER(x)) +                                                          \
          (T)2 * (x)*SIGMOID((T)2 * GELU_INNER(x)) * ((T)1 - SIGMOID((T)2 * GELU_INNER(x))) *      \
              (T)GELU_BETA * ((T)1 + (T)3 * (T)GELU_KAPPA * (x) * (x))))

/* the inverse and hyperbolic functions' derivatives, as PyTorch writes them */
#define RSQRT_GRAD(x) ((T)-0.5 * g / ((x)*sqrt(x)))
#define TAN_GRAD(x)   (g * ((T)1 + tan(x) * tan(x)))
#define ASIN_GRAD(x)  (g / sqrt((T)1 - (x) * (x)))
#define ACOS_GRAD(x)  (-g / sqrt((T)1 - (x) * (x)))
#define ATAN_GRAD(x)  (g / ((x) * (x) + (T)1))
#define ASINH_GRAD(x) (g / sqrt((x) * (x) + (T)1))
#define ACOSH_GRAD(x) (g / sqrt((x) * (x) - (T)1))
#define ATANH_GRAD(x) (g / ((T)1 - (x) * (x)))

#endif
