/* The recurrent family's per-step pointwise kernels on CUDA: the gate
 * activations and state update of RNN, LSTM and GRU cells and their
 * backward, one thread per (row, unit), arithmetic in T (float or double)
 * as the CPU's in double; the step's matrix products are the runtime's
 * cuBLAS gemm calls around these, on the same stream. */
#include "common.cuh"
#include "nn.h"
#include "../rnn.h"

using namespace tdc;

namespace {

/* make the device of p current; false (and an error noted for the next
 * synchronize) when p is not device memory */
bool use_ptr(const void *p, const char *what)
{
    int d = td_cuda_device_of_ptr(p);
    if (d < 0) {
        td_cuda_note_error(cudaErrorInvalidDevicePointer, what);
        return false;
    }
    td_cuda_use(d);
    return true;
}

template <typename T> __device__ inline T sigm(T x) { return (T)1 / ((T)1 + exp(-x)); }

template <typename T>
__device__ inline T pre(const T *g, const T *b, int64_t r, int64_t gh, int64_t j)
{
    return g[r * gh + j] + (b ? b[j] : (T)0);
}

template <typename T> __global__ void step_k(td_rnn_step s)
{
    int64_t h = s.h, G = s.mode == TD_RNN_LSTM ? 4 : s.mode == TD_RNN_GRU ? 3 : 1, gh = G * h;
    int64_t total = s.n * h, stride = (int64_t)gridDim.x * blockDim.x;
    const T *gi = (const T *)s.gi, *gg = (const T *)s.gh, *bi = (const T *)s.b_ih,
            *bh = (const T *)s.b_hh;
    T *sv = (T *)s.saved, *ho = (T *)s.h_out;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += stride) {
        int64_t r = e / h, k = e % h, b = r * 4 * h + k;
        if (s.mode == TD_RNN_TANH || s.mode == TD_RNN_RELU) {
            T a = pre(gi, bi, r, gh, k) + pre(gg, bh, r, gh, k);
            ho[e] = s.mode == TD_RNN_TANH ? tanh(a) : (a > 0 ? a : (a == a ? (T)0 : a));
        } else if (s.mode == TD_RNN_LSTM) {
            T i = sigm(pre(gi, bi, r, gh, k) + pre(gg, bh, r, gh, k));
            T f = sigm(pre(gi, bi, r, gh, h + k) + pre(gg, bh, r, gh, h + k));
            T g = tanh(pre(gi, bi, r, gh, 2 * h + k) + pre(gg, bh, r, gh, 2 * h + k));
            T o = sigm(pre(gi, bi, r, gh, 3 * h + k) + pre(gg, bh, r, gh, 3 * h + k));
            T c = f * ((const T *)s.c_prev)[e] + i * g;
            sv[b] = i;
            sv[b + h] = f;
            sv[b + 2 * h] = g;
            sv[b + 3 * h] = o;
            ((T *)s.c_out)[e] = c;
            ho[e] = o * tanh(c);
        } else {
            T rg = sigm(pre(gi, bi, r, gh, k) + pre(gg, bh, r, gh, k));
            T z = sigm(pre(gi, bi, r, gh, h + k) + pre(gg, bh, r, gh, h + k));
            T hn = pre(gg, bh, r, gh, 2 * h + k);
            T n = tanh(pre(gi, bi, r, gh, 2 * h + k) + rg * hn);
            sv[b] = rg;
            sv[b + h] = z;
            sv[b + 2 * h] = n;
            sv[b + 3 * h] = hn;
            ho[e] = ((T)1 - z) * n + z * ((const T *)s.h_prev)[e];
        }
    }
}

template <typename T> __global__ void step_backward_k(td_rnn_step_grad s)
{
    int64_t h = s.h, G = s.mode == TD_RNN_LSTM ? 4 : s.mode == TD_RNN_GRU ? 3 : 1, gh = G * h;
    int64_t total = s.n * h, stride = (int64_t)gridDim.x * blockDim.x;
    const T *sv = (const T *)s.saved;
    T *dgi = (T *)s.dgi, *dgh = (T *)s.dgh;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += stride) {
        int64_t r = e / h, k = e % h, gj = r * gh + k, b = r * 4 * h + k;
        T dh = ((const T *)s.dh)[e];
        if (s.mode == TD_RNN_TANH || s.mode == TD_RNN_RELU) {
            T y = ((const T *)s.h_out)[e];
            T d = s.mode == TD_RNN_TANH ? dh * ((T)1 - y * y) : (y > 0 ? dh : (T)0);
            dgi[gj] = d;
            dgh[gj] = d;
        } else if (s.mode == TD_RNN_LSTM) {
            T i = sv[b], f = sv[b + h], g = sv[b + 2 * h], o = sv[b + 3 * h];
            T tc = tanh(((const T *)s.c_out)[e]);
            T dc = ((T *)s.dc)[e] + dh * o * ((T)1 - tc * tc);
            T d[4] = {dc * g * i * ((T)1 - i), dc * ((const T *)s.c_prev)[e] * f * ((T)1 - f),
                      dc * i * ((T)1 - g * g), dh * tc * o * ((T)1 - o)};
            for (int q = 0; q < 4; q++) {
                dgi[gj + q * h] = d[q];
                dgh[gj + q * h] = d[q];
            }
            ((T *)s.dc)[e] = dc * f;
        } else {
            T rg = sv[b], z = sv[b + h], n = sv[b + 2 * h], hn = sv[b + 3 * h];
            T hp = ((const T *)s.h_prev)[e];
            T dn = dh * ((T)1 - z) * ((T)1 - n * n);
            T dz = dh * (hp - n) * z * ((T)1 - z);
            T dr = dn * hn * rg * ((T)1 - rg);
            dgi[gj] = dr;
            dgh[gj] = dr;
            dgi[gj + h] = dz;
            dgh[gj + h] = dz;
            dgi[gj + 2 * h] = dn;
            dgh[gj + 2 * h] = dn * rg;
            ((T *)s.dh_prev)[e] = dh * z;
        }
    }
}

template <typename T> __global__ void axpby_k(int64_t n, T a, const T *x, T b, T *y)
{
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        y[i] = a * x[i] + (b != (T)0 ? b * y[i] : (T)0);
}

void step(const td_rnn_step *s)
{
    int64_t total = s->n * s->h;
    if (total == 0) return;
    if (!use_ptr(s->h_out, "rnn step")) return;
    TDC_FLOAT_DISPATCH(s->dtype, { step_k<T><<<blocks_for(total), THREADS>>>(*s); });
    check_launch("rnn step");
}

void step_backward(const td_rnn_step_grad *s)
{
    int64_t total = s->n * s->h;
    if (total == 0) return;
    if (!use_ptr(s->dgi, "rnn step backward")) return;
    TDC_FLOAT_DISPATCH(s->dtype, { step_backward_k<T><<<blocks_for(total), THREADS>>>(*s); });
    check_launch("rnn step backward");
}

void axpby(td_dtype dt, int64_t n, double a, const void *x, double b, void *y)
{
    if (n == 0) return;
    if (!use_ptr(y, "rnn axpby")) return;
    TDC_FLOAT_DISPATCH(
        dt, { axpby_k<T><<<blocks_for(n), THREADS>>>(n, (T)a, (const T *)x, (T)b, (T *)y); });
    check_launch("rnn axpby");
}

} // namespace

/* no whole-layer hooks here: rnn_cudnn.c's td_cuda_rnn_cudnn adds them */
extern "C" const struct td_rnn_kernels td_cuda_rnn = {
    step, step_backward, axpby, nullptr, nullptr, nullptr,
};
