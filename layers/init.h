// Parameter initialisation, in place, from the global generator (core/random.h), so a
// seed fixes every initial weight. Fan sizes follow PyTorch: for a weight [out, in, k...],
// fan_in = in * prod(k), fan_out = out * prod(k).
#pragma once

#include "core/tensor.h"

namespace ag::init {

enum class FanMode { fan_in, fan_out };

int64_t fan_in(const Tensor& weight);   // weight: [out, in, k...] (dim >= 2)
int64_t fan_out(const Tensor& weight);  // weight: [out, in, k...] (dim >= 2)

// N(0, std^2) with std = gain / sqrt(fan), gain = sqrt(2) (ReLU): He et al. 2015.
// torchvision initialises ResNet, MobileNetV2 and EfficientNet convolutions this way
// with FanMode::fan_out.
void kaiming_normal_(Tensor& weight, FanMode mode = FanMode::fan_out, double gain = 1.4142135623730951);
// U(-b, b) with b = gain * sqrt(3 / fan).
void kaiming_uniform_(Tensor& weight, FanMode mode = FanMode::fan_in, double gain = 1.4142135623730951);
// U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)).
void xavier_uniform_(Tensor& weight, double gain = 1.0);
void uniform_(Tensor& t, double low, double high);
void normal_(Tensor& t, double mean, double stddev);
void zeros_(Tensor& t);
void ones_(Tensor& t);

}  // namespace ag::init
