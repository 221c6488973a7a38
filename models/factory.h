// Build a model by name: make_model("resnet18", 10) or, with knobs in the name,
// make_model("resnet18:width=0.25", 10), make_model("mobilenetv2:width=0.5,depth=0.5", 100).
// Names: resnet18 resnet34 resnet50 resnet101 resnet152 (CIFAR stem, stages 64..512),
// resnet20 resnet32 resnet44 resnet56 resnet110 (the CIFAR 16/32/64 family), mobilenetv2,
// efficientnet_b0. Every one takes a 32x32 (or any size >= 8) image.
#pragma once

#include <string>
#include <vector>

#include "models/model.h"

namespace ag {

struct ModelOptions {
  double width = 1.0;       // channel multiplier
  double depth = 1.0;       // block-count multiplier (per stage, rounded up)
  double dropout = -1;      // before the head; < 0: the model's default (EfficientNet 0.2, else 0)
  double drop_path = -1;    // EfficientNet's stochastic depth at the last block; < 0: 0.2
  int64_t in_channels = 3;  // 1 for grey images (Fashion-MNIST)
};

// The canonical model names, for help texts.
std::vector<std::string> model_names();
// Head types: "linear" (Linear(feature_dim, classes) with bias: logits for cross-entropy),
// "cosine" (CosineHead: cos theta for the margin losses), "none" (forward returns the
// features; attach any head with Model::set_head).
std::vector<std::string> head_names();

// Splits "name:knob=value,..." into the name and options (knobs width, depth, dropout,
// drop_path, in_channels override those of `base`). Unknown knobs or bad values throw.
std::string parse_model_spec(const std::string& spec, ModelOptions& options);

// The model named by spec (see above), with a head of the given type for num_classes
// classes (num_classes is ignored for head "none"). Throws ag::Error listing the valid
// names for an unknown model or head.
ModelPtr make_model(const std::string& spec, int64_t num_classes, const std::string& head = "linear",
                    ModelOptions options = {});

}  // namespace ag
