// OnnxGraph: a thin builder over onnx::GraphProto (the ONNX project's generated protobuf
// classes) that keeps value names unique and writes float constants as initializers, so
// the module exporter (interop/onnx_export.cpp) reads as a list of ops.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ag::interop {

class OnnxGraph {
 public:
  explicit OnnxGraph(onnx::GraphProto* graph) : graph_(graph) {}

  // A float32 initializer of shape dims (values row-major, prod(dims) of them), named
  // after hint; returns its name.
  std::string constant(const std::string& hint, const std::vector<float>& values,
                       const std::vector<int64_t>& dims);
  // An int64 initializer (shapes for Reshape).
  std::string constant_int64(const std::string& hint, const std::vector<int64_t>& values);

  // A node of op_type reading inputs, with one output named after hint. Attributes are
  // added on the returned node with the attr_* helpers; its output is node.output(0).
  onnx::NodeProto& node(const std::string& op_type, const std::vector<std::string>& inputs,
                        const std::string& hint);

  // Renames the value `from` to `to` wherever a node reads or writes it (the graph's
  // final value becomes "logits").
  void rename_value(const std::string& from, const std::string& to);

  // A name not used yet: hint itself, else hint_2, hint_3, ...
  std::string unique_name(const std::string& hint);

 private:
  onnx::GraphProto* graph_;
  std::map<std::string, int> used_;
};

void attr_int(onnx::NodeProto& node, const std::string& name, int64_t value);
void attr_ints(onnx::NodeProto& node, const std::string& name, const std::vector<int64_t>& values);
void attr_float(onnx::NodeProto& node, const std::string& name, float value);
void attr_string(onnx::NodeProto& node, const std::string& name, const std::string& value);

}  // namespace ag::interop
