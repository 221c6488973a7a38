// safetensors writer and validating reader.
#include "core/serialize/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/serialize/atomic_file.h"

namespace ag::serialize {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

namespace {

using nlohmann::ordered_json;

constexpr uint64_t kMaxHeaderBytes = 100u << 20;  // the reference implementation's limit

const char* dtype_tag(DType t) {
  switch (t) {
    case DType::f32:
      return "F32";
    case DType::f64:
      return "F64";
    case DType::i64:
      return "I64";
  }
  return "?";
}

bool parse_dtype(const std::string& tag, DType& out) {
  for (DType t : {DType::f32, DType::f64, DType::i64})
    if (tag == dtype_tag(t)) {
      out = t;
      return true;
    }
  return false;
}

struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};

// One tensor's header entry, every field checked against the data size.
Entry parse_entry(const std::string& path, const std::string& name, const ordered_json& j,
                  uint64_t data_size) {
  const std::string where = "safetensors '" + path + "': tensor '" + name + "'";
  AG_CHECK(j.is_object(), where << ": the entry is not a JSON object");
  AG_CHECK(j.contains("dtype") && j["dtype"].is_string(), where << ": no \"dtype\" string");
  AG_CHECK(j.contains("shape") && j["shape"].is_array(), where << ": no \"shape\" array");
  AG_CHECK(j.contains("data_offsets") && j["data_offsets"].is_array() && j["data_offsets"].size() == 2,
           where << ": no \"data_offsets\" pair");
  Entry e{name, DType::f32, {}, 0, 0};
  const std::string tag = j["dtype"].get<std::string>();
  AG_CHECK(parse_dtype(tag, e.dtype),
           where << ": dtype '" << tag << "' is not supported (arcgrad reads F32, F64, I64)");
  uint64_t numel = 1;
  for (const ordered_json& d : j["shape"]) {
    AG_CHECK(d.is_number_unsigned(),
             where << ": the shape " << j["shape"].dump() << " is not a list of sizes >= 0");
    const uint64_t v = d.get<uint64_t>();
    AG_CHECK(!__builtin_mul_overflow(numel, v, &numel) && v <= (uint64_t{1} << 48),
             where << ": the shape " << j["shape"].dump() << " is absurdly large");
    e.shape.push_back(static_cast<int64_t>(v));
  }
  for (const ordered_json& o : j["data_offsets"])
    AG_CHECK(o.is_number_unsigned(),
             where << ": data_offsets " << j["data_offsets"].dump() << " are not offsets >= 0");
  e.begin = j["data_offsets"][0].get<uint64_t>();
  e.end = j["data_offsets"][1].get<uint64_t>();
  AG_CHECK(e.begin <= e.end && e.end <= data_size, where << ": data_offsets [" << e.begin << ", " << e.end
                                                         << "] lie outside the " << data_size
                                                         << " data bytes");
  uint64_t bytes = 0;
  AG_CHECK(!__builtin_mul_overflow(numel, dtype_size(e.dtype), &bytes) && bytes == e.end - e.begin,
           where << ": shape " << shape_str(e.shape) << " of " << tag << " needs "
                 << numel * dtype_size(e.dtype) << " bytes but data_offsets span " << e.end - e.begin);
  return e;
}

// The tensors must tile the data exactly, which also rules out overlaps (checked on a
// copy sorted by offset; the caller keeps the header order).
void check_tiling(const std::string& path, std::vector<Entry> entries, uint64_t data_size) {
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t at = 0;
  const Entry* prev = nullptr;
  for (const Entry& e : entries) {
    AG_CHECK(e.begin >= at, "safetensors '" << path << "': tensors '" << (prev ? prev->name : "") << "' and '"
                                            << e.name << "' overlap in the data (bytes " << e.begin << " to "
                                            << at << ")");
    AG_CHECK(e.begin == at, "safetensors '" << path << "': a hole of " << e.begin - at
                                            << " bytes before tensor '" << e.name
                                            << "' (the format forbids unindexed data)");
    at = e.end;
    prev = &e;
  }
  AG_CHECK(at == data_size, "safetensors '" << path << "': " << data_size - at
                                            << " bytes after the last tensor are not indexed by the header");
}

std::vector<char> read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  AG_CHECK(in.is_open(), "safetensors '" << path << "': cannot open the file: " << std::strerror(errno));
  const std::streamsize size = in.tellg();
  std::vector<char> bytes(static_cast<size_t>(size));
  in.seekg(0);
  AG_CHECK(in.read(bytes.data(), size), "safetensors '" << path << "': reading the file failed");
  return bytes;
}

}  // namespace

void save_safetensors(const std::string& path, const NamedTensors& tensors, const Metadata& metadata) {
  std::set<std::string> names;
  std::vector<Tensor> host;
  for (const auto& [name, t] : tensors) {
    AG_CHECK(!name.empty() && name != "__metadata__",
             "save_safetensors '" << path << "': invalid tensor name '" << name << "'");
    AG_CHECK(names.insert(name).second,
             "save_safetensors '" << path << "': two tensors are named '" << name << "'");
    AG_CHECK(t.defined(), "save_safetensors '" << path << "': tensor '" << name << "' is undefined");
    host.push_back(t.to(Device::cpu()).contiguous());
  }
  // The header lists the tensors in the given order; the data holds the 8-byte types
  // first, so every tensor starts at a multiple of its element size (PyTorch's
  // storage.view(dtype) requires that, as does any zero-copy reader).
  std::vector<size_t> layout;
  for (size_t pass = 0; pass < 2; ++pass)
    for (size_t i = 0; i < host.size(); ++i)
      if ((dtype_size(host[i].dtype()) == 8) == (pass == 0)) layout.push_back(i);
  std::vector<uint64_t> begin(host.size());
  uint64_t offset = 0;
  for (size_t i : layout) {
    begin[i] = offset;
    offset += host[i].nbytes();
  }
  ordered_json header = ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  for (size_t i = 0; i < host.size(); ++i) {
    const uint64_t end = begin[i] + host[i].nbytes();
    header[tensors[i].first] = {
        {"dtype", dtype_tag(host[i].dtype())}, {"shape", host[i].shape()}, {"data_offsets", {begin[i], end}}};
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data 8-byte aligned
  const uint64_t n = text.size();
  AtomicFileWriter out(path);
  out.write(&n, sizeof n);
  out.write(text);
  for (size_t i : layout) out.write(host[i].raw_data(), host[i].nbytes());
  out.commit();
}

SafetensorsFile load_safetensors(const std::string& path) {
  const std::vector<char> bytes = read_whole_file(path);
  const std::string where = "safetensors '" + path + "'";
  AG_CHECK(bytes.size() >= 8,
           where << ": the file is " << bytes.size()
                 << " bytes, too short for the 8-byte header length (truncated or not safetensors)");
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  const uint64_t rest = bytes.size() - 8;
  AG_CHECK(n <= rest && n <= kMaxHeaderBytes,
           where << ": not a safetensors file, or truncated: the header length field reads " << n << " but "
                 << rest << " bytes follow it");
  AG_CHECK(n >= 2 && bytes[8] == '{',
           where << ": not a safetensors file: no JSON header after the length field");
  ordered_json header;  // keeps the header's order, which load returns the tensors in
  try {
    header = ordered_json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(n));
  } catch (const ordered_json::exception& e) {
    AG_FAIL(where << ": the header is not valid JSON (" << e.what() << ")");
  }
  AG_CHECK(header.is_object(), where << ": the header is not a JSON object");
  const uint64_t data_size = rest - n;
  SafetensorsFile file;
  std::vector<Entry> entries;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      AG_CHECK(value.is_object(), where << ": __metadata__ is not a JSON object");
      for (const auto& [k, v] : value.items()) {
        AG_CHECK(v.is_string(), where << ": __metadata__ value of '" << k << "' is not a string");
        file.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(path, key, value, data_size));
  }
  check_tiling(path, entries, data_size);
  const char* data = bytes.data() + 8 + n;
  for (const Entry& e : entries) {
    Tensor t = Tensor::empty(e.shape, e.dtype);
    if (e.end > e.begin) std::memcpy(t.raw_data(), data + e.begin, e.end - e.begin);
    file.tensors.emplace_back(e.name, t);
  }
  return file;
}

}  // namespace ag::serialize
