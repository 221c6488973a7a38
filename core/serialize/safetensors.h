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

}  // namespace ag::serialize
