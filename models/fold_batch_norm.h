// Inference fast path: batch norm folded into the convolution before it. In eval mode a
// batch norm is a per-channel affine map of the convolution's output, so it can be merged
// into the convolution's weight and bias (ConvBn::fold_batch_norm), which saves a full pass
// over every such activation and the batch norm's small per-channel ops. Every conv + batch
// norm pair of the model families is a ConvBn (models/blocks.h): stems, ResNet blocks and
// their projection shortcuts, the expand / depthwise / project convolutions of MobileNetV2
// and EfficientNet.
//
//   auto net = make_model("resnet20", 10);                        // the model being evaluated
//   ...load or train it...
//   auto fast = make_model("resnet20", 10);                       // same architecture
//   fold_batch_norm_copy(*net, *fast);                            // net is not changed
//   Tensor logits = (*fast)(images);                              // as (*net)(images) in eval mode
#pragma once

#include "layers/module.h"

namespace ag {

// Folds every ConvBn of root's tree in place and puts root in eval mode; returns the number
// of batch norms folded. The folded tree can no longer train; the training path keeps the
// unfolded model.
int64_t fold_batch_norm(Module& root);

// Copies trained's parameters and buffers into fresh (a module of the same architecture,
// e.g. built by the same factory call), then folds fresh; trained is left unchanged.
// Returns the number of batch norms folded.
int64_t fold_batch_norm_copy(const Module& trained, Module& fresh);

}  // namespace ag
