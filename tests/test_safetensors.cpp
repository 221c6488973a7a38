// safetensors: byte-level layout, round trips, every kind of corrupt or foreign file,
// atomic replacement under a (simulated) full disk, and loading modules by dotted name.
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/random.h"
#include "core/serialize/atomic_file.h"
#include "core/serialize/safetensors.h"
#include "layers/module_io.h"
#include "test_data_util.h"

using namespace ag;
using namespace ag::serialize;
using ag_test::TempDir;

namespace {
std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

// A file from a header text and raw data, for hand-made corrupt cases.
std::vector<uint8_t> raw_file(const std::string& header, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> out;
  out.reserve(8 + header.size() + data.size());
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(uint64_t{header.size()} >> (8 * i)));
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

void expect_load_error(const TempDir& dir, const std::vector<uint8_t>& bytes, const std::string& fragment) {
  const std::string path = dir.file("bad.safetensors");
  ag_test::write_bytes(path, bytes);
  CHECK_THROWS_WITH_AS(load_safetensors(path), doctest::Contains(fragment.c_str()), Error);
  CHECK_THROWS_WITH_AS(load_safetensors(path), doctest::Contains(path.c_str()), Error);
}

struct Child : Module {
  Child() { register_parameter("weight", Tensor::full({2}, 0.5)); }
  Tensor forward(const Tensor& x) override { return x; }
  std::string type_name() const override { return "Child"; }
};
struct Tiny : Module {
  explicit Tiny(int64_t out = 3) {
    register_parameter("weight", Tensor::normal({out, 2}, 0, 1));
    register_parameter("bias", Tensor::normal({out}, 0, 1));
    register_buffer("running_mean", Tensor::normal({out}, 0, 1));
    register_module("head", std::make_shared<Child>());
  }
  Tensor forward(const Tensor& x) override { return x; }
  std::string type_name() const override { return "Tiny"; }
};
}  // namespace

TEST_CASE("safetensors: the bytes follow the format") {
  TempDir dir;
  const std::string path = dir.file("a.safetensors");
  Tensor a = Tensor::from_vector({1.5, -2}, {2}, DType::f32);
  Tensor b = Tensor::from_labels({7, -1, 3});
  save_safetensors(path, {{"a", a}, {"b", b}}, {{"format", "pt"}});
  const auto bytes = read_bytes(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  CHECK(n % 8 == 0);
  auto header = nlohmann::json::parse(std::string(bytes.begin() + 8, bytes.begin() + 8 + n));
  CHECK(header["__metadata__"]["format"] == "pt");
  CHECK(header["a"]["dtype"] == "F32");
  CHECK(header["a"]["shape"] == nlohmann::json::array({2}));
  // 8-byte types come first in the data, so every tensor is aligned to its element size.
  CHECK(header["a"]["data_offsets"] == nlohmann::json::array({24, 32}));
  CHECK(header["b"]["dtype"] == "I64");
  CHECK(header["b"]["data_offsets"] == nlohmann::json::array({0, 24}));
  REQUIRE(bytes.size() == 8 + n + 32);
  float f[2];
  int64_t l[3];
  std::memcpy(l, bytes.data() + 8 + n, 24);
  std::memcpy(f, bytes.data() + 8 + n + 24, 8);
  CHECK(f[0] == 1.5f);
  CHECK(f[1] == -2.0f);
  CHECK(l[0] == 7);
  CHECK(l[1] == -1);
  CHECK(l[2] == 3);
  // The header keeps the order the tensors were given in, and so does loading.
  CHECK(std::string(bytes.begin() + 8, bytes.begin() + 8 + n).find("\"a\"") <
        std::string(bytes.begin() + 8, bytes.begin() + 8 + n).find("\"b\""));
  auto loaded = load_safetensors(path).tensors;
  CHECK(loaded[0].first == "a");
  CHECK(loaded[1].first == "b");
}

TEST_CASE("safetensors: round trip of dtypes, shapes, views and metadata") {
  TempDir dir;
  const std::string path = dir.file("r.safetensors");
  manual_seed(3);
  Tensor f32 = Tensor::normal({3, 4}, 0, 1);
  Tensor f64 = Tensor::normal({2, 3, 2}, 0, 1, DType::f64);
  Tensor view = f32.t();  // strided: saved as its contiguous values
  Tensor scalar = Tensor::scalar(2.25, DType::f64);
  Tensor empty = Tensor::zeros({0, 5});
  Tensor labels = Tensor::from_labels({0, 9, 4});
  save_safetensors(
      path,
      {{"f32", f32}, {"f64", f64}, {"view", view}, {"scalar", scalar}, {"empty", empty}, {"labels", labels}},
      {{"epoch", "3"}, {"note", "round trip"}});
  SafetensorsFile file = load_safetensors(path);
  CHECK(file.metadata == Metadata{{"epoch", "3"}, {"note", "round trip"}});
  REQUIRE(file.tensors.size() == 6);
  const std::vector<Tensor> originals = {f32, f64, view, scalar, empty, labels};
  const std::vector<std::string> names = {"f32", "f64", "view", "scalar", "empty", "labels"};
  for (size_t i = 0; i < originals.size(); ++i) {
    CAPTURE(names[i]);
    CHECK(file.tensors[i].first == names[i]);
    CHECK(file.tensors[i].second.dtype() == originals[i].dtype());
    CHECK(file.tensors[i].second.shape() == originals[i].shape());
    CHECK(file.tensors[i].second.to_vector() == originals[i].to_vector());
  }
}

TEST_CASE("safetensors: bad tensors to save are rejected") {
  TempDir dir;
  Tensor t = Tensor::zeros({1});
  CHECK_THROWS_WITH_AS(save_safetensors(dir.file("x"), {{"a", t}, {"a", t}}),
                       doctest::Contains("two tensors are named 'a'"), Error);
  CHECK_THROWS_WITH_AS(save_safetensors(dir.file("x"), {{"", t}}), doctest::Contains("invalid tensor name"),
                       Error);
  CHECK_THROWS_WITH_AS(save_safetensors(dir.file("no/such/folder/x"), {{"a", t}}),
                       doctest::Contains("cannot create a temporary file"), Error);
  CHECK(!std::filesystem::exists(dir.file("x")));
}

TEST_CASE("safetensors: corrupt and foreign files give clear errors") {
  TempDir dir;
  const std::vector<uint8_t> d8(8, 0);  // room for two float32 values
  const std::string good = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  ag_test::write_bytes(dir.file("ok.safetensors"), raw_file(good, d8));
  CHECK(load_safetensors(dir.file("ok.safetensors")).tensors.size() == 1);

  expect_load_error(dir, {1, 2, 3}, "too short");
  auto truncated = raw_file(good, d8);
  truncated.resize(truncated.size() - 3);
  expect_load_error(dir, truncated, "data_offsets [0, 8] lie outside the 5 data bytes");
  auto cut_header = raw_file(good, d8);
  cut_header.resize(20);
  expect_load_error(dir, cut_header, "header length field reads");
  expect_load_error(dir, raw_file(R"({"a":{"dtype":"F32",)", d8), "not valid JSON");
  expect_load_error(dir, raw_file(R"({"a":{"dtype":"F16","shape":[4],"data_offsets":[0,8]}})", d8),
                    "dtype 'F16' is not supported");
  expect_load_error(dir, raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}})", d8),
                    "lie outside");
  expect_load_error(dir, raw_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", d8),
                    "needs 12 bytes but data_offsets span 8");
  expect_load_error(dir, raw_file(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", d8),
                    "not a list of sizes");
  expect_load_error(dir,
                    raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                             R"("b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                             d8),
                    "overlap");
  expect_load_error(dir, raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", d8),
                    "a hole of 4 bytes");
  expect_load_error(dir, raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", d8),
                    "4 bytes after the last tensor");
  expect_load_error(dir, raw_file(R"({"a":{"dtype":"F32","shape":[2]}})", d8), "no \"data_offsets\" pair");
  expect_load_error(dir, raw_file(R"({"__metadata__":{"epoch":3}})", {}), "is not a string");
  expect_load_error(dir, raw_file(R"([1,2])", {}), "no JSON header");
  // Foreign files: a PNG, and a text file.
  expect_load_error(dir, {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'},
                    "not a safetensors file");
  const std::string text = "epoch,loss\n1,0.5\n2,0.25\n";
  expect_load_error(dir, std::vector<uint8_t>(text.begin(), text.end()), "not a safetensors file");
  CHECK_THROWS_WITH_AS(load_safetensors(dir.file("missing.safetensors")), doctest::Contains("cannot open"),
                       Error);
}

TEST_CASE("safetensors: a failed write leaves the previous file intact") {
  TempDir dir;
  const std::string path = dir.file("w.safetensors");
  save_safetensors(path, {{"w", Tensor::full({4}, 1.0)}});
  const auto before = read_bytes(path);
  set_simulate_disk_full(true);
  CHECK_THROWS_WITH_AS(save_safetensors(path, {{"w", Tensor::full({4}, 2.0)}}),
                       doctest::Contains("No space left on device"), Error);
  set_simulate_disk_full(false);
  CHECK(read_bytes(path) == before);
  CHECK(load_safetensors(path).tensors[0].second.to_vector() == std::vector<double>(4, 1.0));
  int files = 0;
  for (auto& entry : std::filesystem::directory_iterator(dir.path())) files += entry.is_regular_file();
  CHECK(files == 1);                                        // no temporary file left behind
  save_safetensors(path, {{"w", Tensor::full({4}, 3.0)}});  // and the next write works
  CHECK(load_safetensors(path).tensors[0].second.to_vector() == std::vector<double>(4, 3.0));
}

TEST_CASE("safetensors: modules by dotted names") {
  TempDir dir;
  const std::string path = dir.file("m.safetensors");
  manual_seed(5);
  Tiny a;
  save_module(path, a);
  auto names = load_safetensors(path).tensors;
  REQUIRE(names.size() == 4);
  CHECK(names[0].first == "weight");
  CHECK(names[1].first == "bias");
  CHECK(names[2].first == "head.weight");
  CHECK(names[3].first == "running_mean");

  Tiny b;
  CHECK(b.named_parameters()[0].second.to_vector() != a.named_parameters()[0].second.to_vector());
  load_module(path, b);
  auto sa = module_state(a), sb = module_state(b);
  for (size_t i = 0; i < sa.size(); ++i) CHECK(sa[i].second.to_vector() == sb[i].second.to_vector());

  Tiny wide(4);
  const auto wide_before = wide.named_parameters()[1].second.to_vector();
  CHECK_THROWS_WITH_AS(load_module(path, wide),
                       doctest::Contains("shape mismatch weight (file [3,2], model [4,2])"), Error);
  CHECK(wide.named_parameters()[1].second.to_vector() == wide_before);  // nothing half-loaded
  save_safetensors(path, {{"weight", Tensor::zeros({3, 2})}, {"extra", Tensor::zeros({1})}});
  try {
    load_module(path, b);
    FAIL("expected an error");
  } catch (const Error& e) {
    const std::string msg = e.what();
    CHECK(msg.find(path) != std::string::npos);
    CHECK(msg.find("missing bias, head.weight, running_mean") != std::string::npos);
    CHECK(msg.find("unexpected extra") != std::string::npos);
  }
}
