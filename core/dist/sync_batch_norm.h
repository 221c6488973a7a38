// Synchronised batch norm: batch normalisation whose training statistics cover the union
// of every rank's batch, as if one process held the concatenated batch (PyTorch's
// SyncBatchNorm). Plain data parallelism normalises each rank's shard with its own
// statistics (DDP's default, and arcgrad's); with small per-rank batches those are noisy,
// and sync BN trades two small allreduces per layer (one in forward, one in backward) for
// full-batch statistics.
//
// Forward: each rank sums x and x^2 per channel (in float64) and counts its values; one
// allreduce of [2C + 1] values gives the global mean and biased variance
// (E[x^2] - E[x]^2 in float64). Backward: the two per-channel reductions of the gradient,
// sum(dy) and sum(dy * xhat), are allreduced ([2C] values) and the input gradient uses the
// global ones. The gradients of gamma and beta stay per rank (sums over the rank's own
// shard), like every other parameter's: the gradient reducer averages them.
// What is exact: the statistics and gradients equal batch norm's on the concatenated batch
// up to floating-point reduction order, and the variance comes from float64 sums of squares
// instead of batch_norm's two-pass float64 moments (the same to ~1e-16 relative unless a
// channel's mean dwarfs its spread by ~1e6 and more).
// Every rank must call it for the same layers in the same order (it is a collective); the
// ranks' batch sizes may differ (the counts are reduced too).
#pragma once

#include "core/activation.h"
#include "core/dist/comm.h"
#include "core/tensor.h"

namespace ag::dist {

// x [N, C] or [N, C, L] or [N, C, H, W]; weight, bias, running_mean, running_var: [C] or
// undefined, as batch_norm (core/ops.h). training: global batch statistics (running
// buffers updated with them, unbiased variance over the global count); eval: the running
// statistics, no communication (exactly batch_norm). Differentiable in x, weight, bias.
Tensor sync_batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                       const Tensor& running_var, bool training, double momentum, double eps, Activation act,
                       Communicator& comm);

}  // namespace ag::dist
