// The safetensors format (https://github.com/huggingface/safetensors), so PyTorch, NumPy
// and the `safetensors` Python package read arcgrad's weights and checkpoints directly:
//
//   [8 bytes]  N, the header length, unsigned little-endian
//   [N bytes]  a JSON object: {"__metadata__": {str: str},
//                              name: {"dtype": "F32"|"F64"|"I64", "shape": [...],
//                                     "data_offsets": [begin, end]}, ...}
//              padded with spaces to a multiple of 8 bytes
//   [rest]     the raw little-endian tensor data; offsets are relative to its start, and
//              the tensors tile it exactly (no holes, no overlaps), as the format requires.
//
// Writes are atomic (core/serialize/atomic_file.h). Reads check everything and name the
// file and the offending entry in the error.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace ag {
class Module;
}

namespace ag::serialize {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;
using Metadata = std::map<std::string, std::string>;

struct SafetensorsFile {
  NamedTensors tensors;  // in file order, on the CPU
  Metadata metadata;
};

// Writes tensors (any device, layout, dtype f32/f64/i64; names unique and non-empty)
// in the given order.
void save_safetensors(const std::string& path, const NamedTensors& tensors, const Metadata& metadata = {});
SafetensorsFile load_safetensors(const std::string& path);

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
