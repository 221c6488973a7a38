// Element types and devices.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>

#include "core/error.h"

namespace ag {

// float32 and float64 for values (float64 exists for gradient checks), int64 for labels
// and indices.
enum class DType { f32, f64, i64 };

inline size_t dtype_size(DType t) { return t == DType::f32 ? 4 : 8; }
inline bool is_floating(DType t) { return t != DType::i64; }
inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32:
      return "float32";
    case DType::f64:
      return "float64";
    case DType::i64:
      return "int64";
  }
  return "?";
}
inline std::ostream& operator<<(std::ostream& os, DType t) { return os << dtype_name(t); }

template <typename T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::f32;
}
template <>
constexpr DType dtype_of<double>() {
  return DType::f64;
}
template <>
constexpr DType dtype_of<int64_t>() {
  return DType::i64;
}

enum class DeviceType { cpu, cuda };

struct Device {
  DeviceType type = DeviceType::cpu;
  int index = 0;

  static Device cpu() { return {DeviceType::cpu, 0}; }
  static Device cuda(int index = 0) { return {DeviceType::cuda, index}; }
  bool is_cpu() const { return type == DeviceType::cpu; }
  bool is_cuda() const { return type == DeviceType::cuda; }
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  std::string str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }
  // "cpu", "cuda", "cuda:1"; anything else is an error naming the text.
  static Device parse(const std::string& text);
};
inline std::ostream& operator<<(std::ostream& os, const Device& d) { return os << d.str(); }

// Runs f.template operator()<T>() with T the C++ type of the dtype. Use with a templated
// lambda: dispatch_float(t.dtype(), "op", [&]<typename scalar_t>() { ... });
// (A function, not a macro, so OpenMP pragmas may appear inside the lambda.)
template <typename F>
decltype(auto) dispatch_float(DType dtype, const char* name, F&& f) {
  switch (dtype) {
    case DType::f32:
      return f.template operator()<float>();
    case DType::f64:
      return f.template operator()<double>();
    default:
      break;
  }
  AG_FAIL(name << ": expected a float32 or float64 tensor, got " << dtype);
}

template <typename F>
decltype(auto) dispatch_all(DType dtype, const char* name, F&& f) {
  switch (dtype) {
    case DType::f32:
      return f.template operator()<float>();
    case DType::f64:
      return f.template operator()<double>();
    case DType::i64:
      return f.template operator()<int64_t>();
  }
  AG_FAIL(name << ": unknown dtype");
}

}  // namespace ag
