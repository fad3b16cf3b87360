# Declarations of the C kernels in src_c/ (see fastmlp.h and gemm.h there).
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t

cdef extern from "frame/gemm.h" nogil:
    cdef enum fm_epilogue_kind:
        FM_EPI_STORE
    ctypedef struct fm_epilogue:
        fm_epilogue_kind kind
    enum: FM_PANEL
    int fm_gemm(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                const float *A, Py_ssize_t rsa, Py_ssize_t csa,
                const float *B, Py_ssize_t rsb, Py_ssize_t csb,
                float *C, Py_ssize_t ldc, const fm_epilogue *epi)
    int fm_gemm_bf16(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                     const float *A, Py_ssize_t rsa, Py_ssize_t csa,
                     const float *B, Py_ssize_t rsb, Py_ssize_t csb,
                     float *C, Py_ssize_t ldc, const fm_epilogue *epi)
    int fm_gemm_nonzero_runs(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                             const float *A, Py_ssize_t rsa, Py_ssize_t csa,
                             const float *B, Py_ssize_t rsb, Py_ssize_t csb,
                             float *C, Py_ssize_t ldc, const fm_epilogue *epi, int bf16)

cdef extern from "ops/dropout.h" nogil:
    ctypedef struct fm_dropout:
        uint32_t threshold
        float scale
        uint32_t key[2]
        uint32_t layer
        uint32_t step
        Py_ssize_t row0
    void fm_philox4x32(const uint32_t *ctr, const uint32_t *key, uint32_t *out)
    void fm_dropout_factors(const fm_dropout *d, Py_ssize_t row, Py_ssize_t col, int n,
                            float *factor)

cdef extern from "ops/activation.h" nogil:
    enum: FM_ACT_NONE
    enum: FM_ACT_COUNT
    const char *fm_activation_names[]
    int fm_activation_keeps_z(int act)
    int fm_activation_sign_only(int act)

cdef extern from "fastmlp.h" nogil:
    cdef enum fm_loss_kind:
        FM_LOSS_MSE
        FM_LOSS_CROSS_ENTROPY
        FM_LOSS_SQUARED_ERROR
        FM_LOSS_LOG
        FM_LOSS_BINARY_LOG
        FM_LOSS_POISSON
    ctypedef struct fm_targets:
        int kind
        const int32_t *labels
        const float *Y
        const float *weights
        double scale
    ctypedef struct fm_batch:
        float *X
        int32_t *labels
        float *Y
        float *weights
    enum: FM_OPT_STATES
    cdef enum fm_update_rule:
        FM_OPT_SGD
        FM_OPT_ADAM
    ctypedef struct fm_optimizer:
        float lr
        float alpha
        float momentum
        int nesterov
        int rule
        float beta_1
        float beta_2
        float epsilon
        float lr_t
    ctypedef struct fm_net:
        int n_layers
        const Py_ssize_t *sizes
        float **W
        float **b
        float **state_W[2]
        float **act
        float **grad
        float **pre
        int activation
        int n_threads
        int check_finite
        float **state_b[2]
        const double *dropout
        uint64_t dropout_seed
        uint64_t dropout_step
        int bf16

    int fm_all_finite(const float *x, Py_ssize_t n)
    int fm_float32_from_float64(float *out, const double *x, Py_ssize_t n)
    int fm_network_sizes_check(int n_layers, const Py_ssize_t *sizes, Py_ssize_t max_batch)
    void fm_set_num_threads(int n)
    int fm_get_num_threads()
    int fm_have_openmp()
    int fm_dense_forward(float *out, const float *X, const float *W, const float *b,
                         Py_ssize_t M, Py_ssize_t K, Py_ssize_t N, int activation)
    int fm_dense_backward_input(float *dA_prev, const float *dZ, const float *W,
                                const float *A_prev, int activation, Py_ssize_t M, Py_ssize_t K,
                                Py_ssize_t N)
    int fm_dense_update(float *W, float *b, float *vW, float *vb,
                        const float *A_prev, const float *dZ,
                        Py_ssize_t M, Py_ssize_t K, Py_ssize_t N, const fm_optimizer *opt)
    double fm_mse_loss_grad(float *dout, const float *out, const int32_t *labels,
                            Py_ssize_t M, Py_ssize_t N)
    double fm_cross_entropy_loss_grad(float *dout, const float *out, const int32_t *labels,
                                      Py_ssize_t M, Py_ssize_t N)
    int fm_train_step(const fm_net *net, Py_ssize_t M, const float *X, const int32_t *labels,
                      int loss_kind, const fm_optimizer *opt, double *loss)
    int fm_train_step_rows(const fm_net *net, Py_ssize_t M, const float *X,
                           const int32_t *labels, Py_ssize_t n, const int64_t *rows, float *batch,
                           int32_t *batch_labels, int loss_kind, const fm_optimizer *opt,
                           double *loss)
    int fm_train_step_targets(const fm_net *net, Py_ssize_t M, const float *X,
                              const fm_targets *t, Py_ssize_t n, const int64_t *rows,
                              const fm_batch *batch, const fm_optimizer *opt, double *loss)
    int fm_gradient(const fm_net *net, Py_ssize_t M, const float *X, const fm_targets *t,
                    float **gW, float **gb, double *loss)
    double fm_weights_sum_squares(const fm_net *net)
    int fm_forward(const fm_net *net, Py_ssize_t M, const float *X, float *out, float **scratch,
                   Py_ssize_t scratch_rows)
    int fm_forward_finite(const fm_net *net, Py_ssize_t M, const float *X, float *out,
                          float **scratch, Py_ssize_t scratch_rows)
    Py_ssize_t fm_forward_scratch_rows(const fm_net *net, Py_ssize_t M)
    enum fm_error:
        FM_ERR_MEMORY
        FM_ERR_NOT_FINITE
        FM_ERR_INDEX

cdef extern from "kernels/registry.h" nogil:
    void fm_dispatch_init()
    const char *fm_isa_name()
    int fm_isa_set(const char *name)
    const char *fm_isa_known()
    const char *fm_isa_available()
    const char *fm_isa_note()
    const char *fm_compiler()
    const char *fm_bf16_name()
    int fm_bf16_native()
    void fm_bf16_set_emulated(int emulated)

cdef extern from "kernels/peak.h" nogil:
    double fm_peak_gflops(int n_threads, double seconds)
    double fm_peak_gflops_bf16(int n_threads, double seconds)
