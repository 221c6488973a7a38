// The kernel functions, declared once and included three times: in namespace ag (the
// dispatching entry points, core/kernels.cpp), ag::cpu (core/cpu/) and ag::cuda
// (core/cuda/), so every backend has exactly the same signatures. No include guard on
// purpose. Unless a comment says otherwise, tensors are contiguous, on one device, and of
// one floating dtype; kernels assign their outputs (only autograd accumulates).
// ---------------------------------------------------------------- elementwise

// out = op(x). out, x: [*] same shape.
void unary_forward(Tensor& out, const Tensor& x, UnaryOp op, UnaryParams params = {});
// grad_x = grad_y * op'(x). All [*] same shape; y = op(x) is passed because some
// derivatives are cheapest from the output (exp, sigmoid, tanh).
void unary_backward(Tensor& grad_x, const Tensor& grad_y, const Tensor& x, const Tensor& y, UnaryOp op,
                    UnaryParams params = {});
// out = act(x); grad_x = grad_y * act'(x), from x and y = act(x) as for the unary ops.
// All [*] same shape; act is not none.
void activation_forward(Tensor& out, const Tensor& x, Activation act);
void activation_backward(Tensor& grad_x, const Tensor& grad_y, const Tensor& x, const Tensor& y,
                         Activation act);

// out = a op b with NumPy broadcasting. out: broadcast(a.shape, b.shape); a, b contiguous.
void binary_forward(Tensor& out, const Tensor& a, const Tensor& b, BinaryOp op);

// out = alpha * a + beta * b (no broadcasting): used by accumulation and optimizers.
void axpby(Tensor& out, double alpha, const Tensor& a, double beta, const Tensor& b);
// out = alpha * x.
void scale(Tensor& out, const Tensor& x, double alpha);

// out[i] = cond[i] != 0 ? a[i] : b[i]. All [*] same shape; cond of any dtype.
void where_forward(Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b);

// ---------------------------------------------------------------- copies
// out = value everywhere. out: any strides.
void fill(Tensor& out, double value);
// out = src, converting dtype. out, src: same shape, any strides, same device.
void copy(Tensor& out, const Tensor& src);
// Host <-> device transfer of contiguous tensors of one dtype and shape.
void copy_between_devices(Tensor& out, const Tensor& src);

// ---------------------------------------------------------------- reductions
// Reductions view x as [outer, n, inner] (n = the reduced dim) and write out [outer, inner].
void reduce_dim(Tensor& out, const Tensor& x, int64_t outer, int64_t n, int64_t inner, ReduceOp op);
// out: int64 [outer, inner], index of the maximum (first one on ties).
void argmax_dim(Tensor& out, const Tensor& x, int64_t outer, int64_t n, int64_t inner);
// out: [outer, n, inner] = g[outer, inner] broadcast along n, times alpha.
void broadcast_dim(Tensor& out, const Tensor& g, int64_t outer, int64_t n, int64_t inner, double alpha);
// out: [1] = sum of all elements.
void sum_all(Tensor& out, const Tensor& x);
// Sums grad (shape of a broadcast result) down to out.shape() (broadcast-compatible).
void sum_to(Tensor& out, const Tensor& grad);

// ---------------------------------------------------------------- linear algebra
// out[M,N] = alpha * op(a) op(b) + beta * out (see GemmArgs); a, b, out raw row-major
// buffers starting at their tensors' data.
void gemm(Tensor& out, const Tensor& a, const Tensor& b, const GemmArgs& args);
// Batched: out[B,M,N], a[B,...], b[B,...] contiguous per batch with the given strides.
void gemm_batched(Tensor& out, const Tensor& a, const Tensor& b, const GemmArgs& args, int64_t batch,
                  int64_t stride_a, int64_t stride_b, int64_t stride_c);
// out[N,C] += bias[C] broadcast over rows (used after a GEMM).
void add_row_bias(Tensor& out, const Tensor& bias);

// ---------------------------------------------------------------- softmax family
// Softmax over n of x viewed as [outer, n, inner]; log_softmax when log is set.
void softmax_forward(Tensor& y, const Tensor& x, int64_t outer, int64_t n, int64_t inner, bool log);
// grad_x from y (the forward output) and grad_y.
void softmax_backward(Tensor& grad_x, const Tensor& grad_y, const Tensor& y, int64_t outer, int64_t n,
                      int64_t inner, bool log);
// y = x / max(||x||_2 over n, eps); norm: [outer, inner] holds max(||x||, eps).
void l2_normalize_forward(Tensor& y, Tensor& norm, const Tensor& x, int64_t outer, int64_t n, int64_t inner,
                          double eps);
void l2_normalize_backward(Tensor& grad_x, const Tensor& grad_y, const Tensor& x, const Tensor& norm,
                           int64_t outer, int64_t n, int64_t inner, double eps);

// ---------------------------------------------------------------- indexing
// out[o, j, i] = x[o, index[o, j, i], i]; index int64 [outer, k, inner], x [outer, n, inner].
// Every index is checked to lie in [0, n).
void gather_dim(Tensor& out, const Tensor& x, const Tensor& index, int64_t outer, int64_t n, int64_t k,
                int64_t inner);
// grad_x (zeroed first) [outer, n, inner] += grad [outer, k, inner] at index.
void scatter_add_dim(Tensor& grad_x, const Tensor& grad, const Tensor& index, int64_t outer, int64_t n,
                     int64_t k, int64_t inner);
// out[N, classes] = 1 where j == labels[i]. labels: int64 [N], checked in [0, classes).
void one_hot(Tensor& out, const Tensor& labels, int64_t classes);

// ================================================================ layers (conv, batch norm, pooling)
// Dispatch in core/kernels_nn.cpp; parameter structs in core/nn_params.h. Image tensors
// are NCHW. A fused activation (act) must be is_fusable() (core/activation.h).

// out [N, C_out, H_out, W_out] = x [N, C_in, H, W] (*) w [C_out, C_in / groups, KH, KW]
// + bias [C_out] (bias may be undefined). Sizes per conv_out_size().
void conv2d_forward(Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p);
// grad_x [N, C_in, H, W] = d(out)/dx applied to grad_out [N, C_out, H_out, W_out]; w as above.
void conv2d_backward_input(Tensor& grad_x, const Tensor& grad_out, const Tensor& w, const Conv2dParams& p);
// grad_w [C_out, C_in / groups, KH, KW] from grad_out [N, C_out, H_out, W_out], x [N, C_in, H, W].
void conv2d_backward_weight(Tensor& grad_w, const Tensor& grad_out, const Tensor& x, const Conv2dParams& p);
// grad_bias [C] = grad_out [N, C, H, W] summed over N, H and W.
void conv2d_backward_bias(Tensor& grad_bias, const Tensor& grad_out);

// Batch norm over x viewed as [N, C, S] (S = H*W for images, 1 for [N, C]). gamma, beta:
// [C] or undefined (1 and 0). act is applied to the normalised output in the same pass.
// Training: mean/invstd [C] get the batch mean and 1/sqrt(biased var + eps); when defined,
// running_mean/running_var [C] are updated in place with momentum (unbiased variance).
void batch_norm_forward_train(Tensor& y, Tensor& mean, Tensor& invstd, Tensor& running_mean,
                              Tensor& running_var, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                              double momentum, double eps, Activation act);
// Eval: y = act((x - mean) * invstd * gamma + beta) with given mean, invstd [C].
void batch_norm_forward_eval(Tensor& y, const Tensor& x, const Tensor& mean, const Tensor& invstd,
                             const Tensor& gamma, const Tensor& beta, Activation act);
// Gradients of batch norm (+ act). The act's derivative: on the CPU from its input,
// recomputed from x, mean, invstd, gamma and beta exactly as the forward computed it (one
// tensor fewer to read); on CUDA from y, the forward output (may be undefined when act is
// none). training: mean/invstd were batch statistics (the gradient flows through them);
// otherwise they were constants. grad_x [N, C, S], grad_gamma, grad_beta [C]: each may be
// undefined when not needed; gamma, beta [C] or undefined, as in the forward.
void batch_norm_backward(Tensor& grad_x, Tensor& grad_gamma, Tensor& grad_beta, const Tensor& grad_y,
                         const Tensor& x, const Tensor& y, const Tensor& mean, const Tensor& invstd,
                         const Tensor& gamma, const Tensor& beta, bool training, Activation act);

// Max pooling: out [N, C, H_out, W_out], indices int64 [N, C, H_out, W_out] (the argmax's
// offset h * W + w within its [H, W] plane, first maximum on ties), x [N, C, H, W].
void max_pool2d_forward(Tensor& out, Tensor& indices, const Tensor& x, const Pool2dParams& p);
// grad_x [N, C, H, W] (every element written) from grad_out and indices.
void max_pool2d_backward(Tensor& grad_x, const Tensor& grad_out, const Tensor& indices,
                         const Pool2dParams& p);
// Average pooling: out [N, C, H_out, W_out] from x [N, C, H, W].
void avg_pool2d_forward(Tensor& out, const Tensor& x, const Pool2dParams& p);
void avg_pool2d_backward(Tensor& grad_x, const Tensor& grad_out, const Pool2dParams& p);

// out = act(a + b); out, a, b: [*] same shape (residual connections).
void add_act_forward(Tensor& out, const Tensor& a, const Tensor& b, Activation act);
// grad_x = grad_y * act'(.) read from y = act(.) (the forward output). All [*] same shape.
void act_backward_from_output(Tensor& grad_x, const Tensor& grad_y, const Tensor& y, Activation act);

// ================================================================ losses
// Dispatch in core/kernels_loss.cpp.

// Softmax cross-entropy with label smoothing, fused (log-sum-exp, so no exp overflows).
// The target distribution is q = (1 - smoothing) one_hot(label) + smoothing / C.
// loss: [N] per-row losses, loss_i = lse_i - sum_j q_ij logits_ij; lse: [N] per-row
// log-sum-exp (saved for the backward); logits: [N, C]; labels: int64 [N], each checked
// to lie in [0, C) (the CPU twin throws an ag::Error naming the label and C).
void cross_entropy_forward(Tensor& loss, Tensor& lse, const Tensor& logits, const Tensor& labels,
                           double label_smoothing);
// grad_logits: [N, C] = grad_loss[i] * (exp(logits - lse_i) - q_ij); grad_loss, lse: [N];
// logits: [N, C]; labels: int64 [N].
void cross_entropy_backward(Tensor& grad_logits, const Tensor& grad_loss, const Tensor& logits,
                            const Tensor& lse, const Tensor& labels, double label_smoothing);

// ================================================================ optim
// Dispatch in core/kernels_optim.cpp.
// Fused, in-place optimizer updates of one parameter. param, grad and the state tensors
// are contiguous, of one shape, dtype and device. Unlike the other kernels these update
// param and the state buffers in place (read-modify-write); grad is read-only.

// SGD with PyTorch semantics:
//   g = grad + weight_decay * param
//   if momentum != 0: buf = momentum * buf + (1 - dampening) * g
//                     g = nesterov ? g + momentum * buf : buf
//   param -= lr * g
// param: [*], momentum_buf: [*] (may be undefined when momentum == 0), grad: [*].
// The caller passes dampening = 0 with a zeroed buffer on a parameter's first step, which
// makes buf = g exactly as PyTorch's lazily created buffer does.
void sgd_update(Tensor& param, const Tensor& grad, Tensor& momentum_buf, double lr, double momentum,
                double dampening, double weight_decay, bool nesterov);

// AdamW (decoupled weight decay, Loshchilov & Hutter; PyTorch's torch.optim.AdamW):
//   param *= 1 - lr * weight_decay
//   m = beta1 * m + (1 - beta1) * grad;  v = beta2 * v + (1 - beta2) * grad^2
//   param -= lr / (1 - beta1^step) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps)
// param, m, v, grad: [*]; step >= 1 counts this parameter's updates including this one.
void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, double lr, double beta1,
                  double beta2, double eps, double weight_decay, int64_t step);
