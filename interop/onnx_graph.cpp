#include "interop/onnx_graph.h"

#include "core/error.h"

namespace ag::interop {

std::string OnnxGraph::unique_name(const std::string& hint) {
  const std::string base = hint.empty() ? "value" : hint;
  const int n = ++used_[base];
  if (n == 1) return base;
  std::string name = base + "_" + std::to_string(n);
  while (used_.count(name)) name += "_";  // a hint that itself ends in _<n>
  used_[name] = 1;
  return name;
}

std::string OnnxGraph::constant(const std::string& hint, const std::vector<float>& values,
                                const std::vector<int64_t>& dims) {
  int64_t count = 1;
  for (int64_t d : dims) count *= d;
  AG_CHECK(count == static_cast<int64_t>(values.size()), "OnnxGraph::constant '"
                                                             << hint << "': " << values.size()
                                                             << " values for " << count << " elements");
  onnx::TensorProto* t = graph_->add_initializer();
  t->set_name(unique_name(hint));
  t->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t->add_dims(d);
  // raw_data is the packed little-endian form every runtime reads fastest.
  t->set_raw_data(std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float)));
  return t->name();
}

std::string OnnxGraph::constant_int64(const std::string& hint, const std::vector<int64_t>& values) {
  onnx::TensorProto* t = graph_->add_initializer();
  t->set_name(unique_name(hint));
  t->set_data_type(onnx::TensorProto::INT64);
  t->add_dims(static_cast<int64_t>(values.size()));
  for (int64_t v : values) t->add_int64_data(v);
  return t->name();
}

onnx::NodeProto& OnnxGraph::node(const std::string& op_type, const std::vector<std::string>& inputs,
                                 const std::string& hint) {
  onnx::NodeProto* n = graph_->add_node();
  n->set_op_type(op_type);
  for (const std::string& in : inputs) n->add_input(in);
  const std::string out = unique_name(hint);
  n->add_output(out);
  n->set_name(out);
  return *n;
}

void OnnxGraph::rename_value(const std::string& from, const std::string& to) {
  for (onnx::NodeProto& n : *graph_->mutable_node()) {
    for (std::string& in : *n.mutable_input())
      if (in == from) in = to;
    for (std::string& out : *n.mutable_output())
      if (out == from) out = to;
  }
  used_[to] = 1;
}

void attr_int(onnx::NodeProto& node, const std::string& name, int64_t value) {
  onnx::AttributeProto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(value);
}

void attr_ints(onnx::NodeProto& node, const std::string& name, const std::vector<int64_t>& values) {
  onnx::AttributeProto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t v : values) a->add_ints(v);
}

void attr_float(onnx::NodeProto& node, const std::string& name, float value) {
  onnx::AttributeProto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(value);
}

void attr_string(onnx::NodeProto& node, const std::string& name, const std::string& value) {
  onnx::AttributeProto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s(value);
}

}  // namespace ag::interop
