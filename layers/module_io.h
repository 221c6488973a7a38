// A Module's parameters and buffers saved to and loaded from safetensors files
// (core/serialize/safetensors.h) by their dotted names, so PyTorch reads them with
// model.load_state_dict(safetensors.torch.load_file(path)).
#pragma once

#include <string>

#include "core/serialize/safetensors.h"
#include "layers/module.h"

namespace ag::serialize {

// A module's state: its parameters, then its buffers, by dotted name (the live tensors).
NamedTensors module_state(const Module& module);
// Copies tensors into the module's parameters and buffers by dotted name. Every name must
// match: missing, unexpected and shape-mismatched names are all listed in one error that
// starts with source (e.g. the file name). Values are converted to each tensor's dtype
// and device; nothing is changed unless every check passes.
void load_module_state(Module& module, const NamedTensors& tensors, const std::string& source);

// Weights only, plain dotted names: torch's model.load_state_dict(safetensors.torch.load_file(path)).
void save_module(const std::string& path, const Module& module, const Metadata& metadata = {});
void load_module(const std::string& path, Module& module);

}  // namespace ag::serialize
