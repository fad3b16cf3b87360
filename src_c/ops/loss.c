/* loss.c - loss values and their gradients with respect to the network's output.
 *
 * Scalar C compiled once for every instruction set, each row on its own: the same bits on every
 * path and whatever thread computes the row. scikit-learn's losses (fm_targets) are computed
 * in double from the logits z, each log p stably (log-softmax, log-sigmoid), then clipped as
 * scikit-learn clips p.
 */
#include <float.h>
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

/* The bounds of log p when p is clipped to [DBL_EPSILON, 1 - DBL_EPSILON] (scikit-learn's
 * np.clip(p, eps, 1 - eps) before its logs). */
typedef struct {
    double lo, hi;
} log_clip;

static log_clip log_clip_bounds(void)
{
    return (log_clip){ .lo = log(DBL_EPSILON), .hi = log1p(-DBL_EPSILON) };
}

static double clip_log(log_clip c, double logp)
{
    return logp < c.lo ? c.lo : logp > c.hi ? c.hi : logp;
}

/* 0.5 mean_j (y - z)^2; d = (z - y) ws. */
static double squared_error_row(float *d, const float *z, const float *y, ptrdiff_t N, double ws)
{
    double sum = 0.0;
    for (ptrdiff_t j = 0; j < N; j++) {
        double r = (double)z[j] - (double)y[j];
        sum += r * r;
        d[j] = (float)(r * ws);
    }
    return 0.5 * sum / (double)N;
}

/* A row's exponentials kept between its two passes, up to this many outputs (past them, each
 * is computed again: the same value). A small network's step spends much of its time in exp. */
enum { EXP_KEPT = 64 };

/* -sum_j y log clip(softmax(z)); d = (softmax(z) - y) ws. */
static double log_row(float *d, const float *z, const float *y, ptrdiff_t N, double ws,
                      log_clip c)
{
    double top = z[0];
    for (ptrdiff_t j = 1; j < N; j++)
        top = z[j] > top ? z[j] : top;
    double kept[EXP_KEPT];
    double sum = 0.0;
    for (ptrdiff_t j = 0; j < N; j++) {
        const double e = exp((double)z[j] - top);
        if (j < EXP_KEPT)
            kept[j] = e;
        sum += e;
    }
    const double log_sum = log(sum);
    double loss = 0.0;
    for (ptrdiff_t j = 0; j < N; j++) {
        double logp = (double)z[j] - top - log_sum;
        if (y[j] != 0.0f)   /* xlogy: 0 log p is 0 */
            loss -= (double)y[j] * clip_log(c, logp);
        const double e = j < EXP_KEPT ? kept[j] : exp((double)z[j] - top);
        d[j] = (float)((e / sum - (double)y[j]) * ws);
    }
    return loss;
}

/* softplus(x) = log(1 + exp(x)) without overflow, max(x, 0) + log1p(exp(-|x|)), given that
 * tail log1p(exp(-|x|)): softplus(z) and softplus(-z) share it. */
static double softplus_with_tail(double x, double tail)
{
    return (x > 0.0 ? x : 0.0) + tail;
}

/* -sum_j [y log clip(p) + (1 - y) log clip(1 - p)], p = logistic(z); d = (p - y) ws.
 * log p = -softplus(-z) and log(1 - p) = -softplus(z): one exp and one log1p for both. */
static double binary_log_row(float *d, const float *z, const float *y, ptrdiff_t N, double ws,
                             log_clip c)
{
    double loss = 0.0;
    for (ptrdiff_t j = 0; j < N; j++) {
        const double zj = z[j], yj = y[j];
        const double e = exp(-fabs(zj)), tail = log1p(e);
        if (yj != 0.0)
            loss -= yj * clip_log(c, -softplus_with_tail(-zj, tail));          /* log p */
        if (yj != 1.0)
            loss -= (1.0 - yj) * clip_log(c, -softplus_with_tail(zj, tail));   /* log(1 - p) */
        const double p = zj >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
        d[j] = (float)((p - yj) * ws);
    }
    return loss;
}

/* sum_j [xlogy(y, y / p) - y + p], p = exp(z), xlogy(y, y / p) = y (log y - z); d = (p - y) ws. */
static double poisson_row(float *d, const float *z, const float *y, ptrdiff_t N, double ws)
{
    double loss = 0.0;
    for (ptrdiff_t j = 0; j < N; j++) {
        const double zj = z[j], yj = y[j], p = exp(zj);
        loss += (yj != 0.0 ? yj * (log(yj) - zj) : 0.0) - yj + p;
        d[j] = (float)((p - yj) * ws);
    }
    return loss;
}

double fm_targets_rows_grad(float *dout, const float *out, const fm_targets *t, ptrdiff_t i0,
                            ptrdiff_t rows, ptrdiff_t N, ptrdiff_t M)
{
    if (t->kind == FM_LOSS_CROSS_ENTROPY)
        return fm_cross_entropy_rows_grad(dout, out, t->labels + i0, rows, N, M);
    if (t->kind == FM_LOSS_MSE)
        return fm_mse_rows_grad(dout, out, t->labels + i0, rows, N, M);
    const log_clip c = log_clip_bounds();
    double total = 0.0;
    for (ptrdiff_t i = 0; i < rows; i++) {
        const float *z = out + i * N, *y = t->Y + (i0 + i) * N;
        float *d = dout + i * N;
        const double w = t->weights != NULL ? (double)t->weights[i0 + i] : 1.0;
        const double ws = w * t->scale;
        double l;
        switch (t->kind) {
        case FM_LOSS_SQUARED_ERROR: l = squared_error_row(d, z, y, N, ws); break;
        case FM_LOSS_LOG:           l = log_row(d, z, y, N, ws, c); break;
        case FM_LOSS_BINARY_LOG:    l = binary_log_row(d, z, y, N, ws, c); break;
        case FM_LOSS_POISSON:       l = poisson_row(d, z, y, N, ws); break;
        default:                    l = bad_row(d, N); break;
        }
        total += w * l;
    }
    return total;
}
