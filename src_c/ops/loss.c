/* loss.c - loss values and their gradients with respect to the network's output. */
#include <math.h>

#include "fastmlp.h"

/* labels[i], read once and checked: -1 when outside [0, N). */
static ptrdiff_t label_at(const int32_t *labels, ptrdiff_t i, ptrdiff_t N)
{
    int32_t y = *(const volatile int32_t *)(labels + i);
    return y >= 0 && y < N ? y : -1;
}

/* A row whose label is out of range: no gradient, a NaN loss. */
static double bad_row(float *drow, ptrdiff_t N)
{
    for (ptrdiff_t j = 0; j < N; j++)
        drow[j] = 0.0f;
    return NAN;
}

double fm_mse_rows_grad(float *dout, const float *out, const int32_t *labels,
                        ptrdiff_t rows, ptrdiff_t N, ptrdiff_t M)
{
    double total = 0.0;
    float scale = 2.0f / (float)M;
    for (ptrdiff_t i = 0; i < rows; i++) {
        const ptrdiff_t y = label_at(labels, i, N);
        if (y < 0) {
            total += bad_row(dout + i * N, N);
            continue;
        }
        for (ptrdiff_t j = 0; j < N; j++) {
            float target = j == y ? 1.0f : 0.0f;
            float d = out[i * N + j] - target;
            total += (double)d * (double)d;
            dout[i * N + j] = d * scale;
        }
    }
    return total;
}

/* Softmax and cross-entropy fused: the log-sum-exp is shifted by the row maximum. */
double fm_cross_entropy_rows_grad(float *dout, const float *out, const int32_t *labels,
                                  ptrdiff_t rows, ptrdiff_t N, ptrdiff_t M)
{
    double total = 0.0;
    float inv_m = 1.0f / (float)M;
    for (ptrdiff_t i = 0; i < rows; i++) {
        const float *row = out + i * N;
        float *drow = dout + i * N;
        const ptrdiff_t y = label_at(labels, i, N);
        if (y < 0) {
            total += bad_row(drow, N);
            continue;
        }
        float top = row[0];
        for (ptrdiff_t j = 1; j < N; j++)
            top = row[j] > top ? row[j] : top;
        double sum = 0.0;
        for (ptrdiff_t j = 0; j < N; j++) {
            float e = expf(row[j] - top);
            drow[j] = e;
            sum += e;
        }
        total += log(sum) - ((double)row[y] - top);
        float inv_sum = (float)(1.0 / sum);
        for (ptrdiff_t j = 0; j < N; j++) {
            float target = j == y ? 1.0f : 0.0f;
            drow[j] = (drow[j] * inv_sum - target) * inv_m;
        }
    }
    return total;
}

double fm_mse_loss_grad(float *dout, const float *out, const int32_t *labels,
                        ptrdiff_t M, ptrdiff_t N)
{
    return fm_mse_rows_grad(dout, out, labels, M, N, M) / (double)M;
}

double fm_cross_entropy_loss_grad(float *dout, const float *out, const int32_t *labels,
                                  ptrdiff_t M, ptrdiff_t N)
{
    return fm_cross_entropy_rows_grad(dout, out, labels, M, N, M) / (double)M;
}
