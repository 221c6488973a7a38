// Numbers read from JSON that someone else may have edited (a checkpoint's state).
// nlohmann's get<int64_t>() converts whatever number it finds: a fraction is silently
// truncated, and a float outside int64's range (1e300) is undefined behaviour (found by
// tests/fuzz/). These take integers only where a count is meant, and say which field was
// wrong. (The safetensors reader checks its sizes with is_number_unsigned itself.)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"

namespace ag::serialize {

// The value as an int64 when it is a JSON integer that fits; nothing otherwise (a float,
// 1.0 included, a string, an integer above 2^63 - 1).
template <class Json>
std::optional<int64_t> json_int64(const Json& v) {
  if (v.is_number_unsigned()) {
    const auto u = v.template get<uint64_t>();
    if (!std::in_range<int64_t>(u)) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) return v.template get<int64_t>();
  return std::nullopt;
}

// object[key] as an int64; an ag::Error naming `what` and the key when it is missing or not
// a whole number in range.
template <class Json>
int64_t json_int64_field(const Json& object, const std::string& key, const std::string& what) {
  const bool present = object.is_object() && object.contains(key);
  const std::optional<int64_t> n = present ? json_int64(object.at(key)) : std::nullopt;
  AG_CHECK(n.has_value(), what << ": field '" << key << "' "
                               << (present ? "is " + object.at(key).dump() + ", not a whole number"
                                           : std::string("is missing")));
  return *n;
}

// object[key] as a double (any JSON number); an ag::Error naming `what` and the key when it
// is missing or not a number (NaN and infinities are written as null, so they land here).
template <class Json>
double json_number_field(const Json& object, const std::string& key, const std::string& what) {
  const bool present = object.is_object() && object.contains(key);
  AG_CHECK(present && object.at(key).is_number(),
           what << ": field '" << key << "' "
                << (present ? "is " + object.at(key).dump() + ", not a number" : std::string("is missing")));
  return object.at(key).template get<double>();
}

// A JSON array of whole numbers (a shape) as int64s; an ag::Error naming `what` otherwise.
template <class Json>
std::vector<int64_t> json_int64_array(const Json& array, const std::string& what) {
  AG_CHECK(array.is_array(), what << " is " << array.dump() << ", not an array of whole numbers");
  std::vector<int64_t> out;
  for (const Json& v : array) {
    const std::optional<int64_t> n = json_int64(v);
    AG_CHECK(n.has_value(), what << " is " << array.dump() << ", not an array of whole numbers");
    out.push_back(*n);
  }
  return out;
}

}  // namespace ag::serialize
