// Writes the seed corpus of the fuzz targets: small valid inputs of every reader, in the
// framing fuzz_inputs.h describes. Run once, its output is committed:
//   build-fuzz/tests/fuzz/fuzz_make_corpus tests/fuzz/corpus
#include <filesystem>
#include <iostream>

#include "apps/lib/checkpoint.h"
#include "apps/lib/train_config.h"
#include "core/serialize/safetensors.h"
#include "data/file_io.h"
#include "data/idx.h"
#include "data/image_codec.h"
#include "layers/linear.h"

using namespace ag;
namespace fs = std::filesystem;

namespace {

using Bytes = std::vector<uint8_t>;

Bytes operator+(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// The 3-byte header of the two-file targets: mode, then the split point (big-endian).
Bytes header(uint8_t mode, size_t split) {
  return {mode, static_cast<uint8_t>(split >> 8), static_cast<uint8_t>(split & 0xff)};
}

Bytes pattern(size_t n, int seed) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>((i * 37 + static_cast<size_t>(seed) * 101) % 251);
  return b;
}

Bytes cifar_records(const std::vector<Bytes>& labels) {
  Bytes out;
  for (size_t r = 0; r < labels.size(); ++r) out = out + labels[r] + pattern(3072, static_cast<int>(r));
  return out;
}

Bytes idx_file(const Dataset& d, bool images) {
  const std::string tmp = (fs::temp_directory_path() / "arcgrad_corpus_idx").string();
  images ? write_idx_images(d, tmp) : write_idx_labels(d, tmp);
  Bytes b = read_file_bytes(tmp);
  fs::remove(tmp);
  return b;
}

Bytes gzip_file(const Bytes& raw) {
  const std::string tmp = (fs::temp_directory_path() / "arcgrad_corpus_gz").string();
  write_file_bytes(tmp, raw);
  const std::string cmd = "gzip -nf " + tmp;
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("gzip failed");
  Bytes b = read_file_bytes(tmp + ".gz");
  fs::remove(tmp + ".gz");
  return b;
}

void put(const fs::path& root, const std::string& target, const std::string& name, const Bytes& bytes) {
  fs::create_directories(root / target);
  write_file_bytes((root / target / name).string(), bytes);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: fuzz_make_corpus <corpus folder>\n";
    return 2;
  }
  const fs::path root = argv[1];

  put(root, "cifar", "cifar10_two_records", Bytes{0} + cifar_records({{3}, {7}}));
  put(root, "cifar", "cifar100_fine_two_records", Bytes{1} + cifar_records({{4, 72}, {1, 99}}));
  put(root, "cifar", "cifar100_coarse_one_record", Bytes{3} + cifar_records({{19, 0}}));
  const std::string names = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n";
  put(root, "cifar", "class_names", Bytes{4} + Bytes(names.begin(), names.end()));

  Dataset digits(1, 4, 5, mnist_class_names());
  for (int i = 0; i < 3; ++i) digits.add(pattern(20, i).data(), i * 3);
  const Bytes images = idx_file(digits, true), labels = idx_file(digits, false);
  put(root, "idx", "raw", header(0, images.size()) + images + labels);
  put(root, "idx", "gzip_by_body", header(1, images.size()) + images + labels);
  const Bytes gz_images = gzip_file(images), gz_labels = gzip_file(labels);
  put(root, "idx", "gzip_files", header(2, gz_images.size()) + gz_images + gz_labels);

  const Bytes rgb = pattern(3 * 6 * 5, 1), grey = pattern(6 * 5, 2);
  const Bytes png = encode_image(rgb.data(), 3, 6, 5, ImageFormat::png);
  const Bytes jpg = encode_image(rgb.data(), 3, 6, 5, ImageFormat::jpg, 90);
  const Bytes grey_png = encode_image(grey.data(), 1, 6, 5, ImageFormat::png);
  put(root, "image_folder", "png_and_jpg_rgb", header(2, png.size()) + png + jpg);
  put(root, "image_folder", "grey_png_pair", header(1, grey_png.size()) + grey_png + grey_png);
  put(root, "image_folder", "png_and_grey_as_file", header(0, png.size()) + png + grey_png);

  const std::string st = (fs::temp_directory_path() / "arcgrad_corpus.safetensors").string();
  serialize::save_safetensors(st,
                              {{"weight", Tensor::from_vector({1, -2, 3.5, 0, 5, 6}, {2, 3})},
                               {"steps", Tensor::from_labels({7, 8})},
                               {"scale", Tensor::scalar(0.25, DType::f64)}},
                              {{"note", "seed"}});
  put(root, "safetensors", "three_tensors", read_file_bytes(st));
  fs::remove(st);

  const std::string dir = (fs::temp_directory_path() / "arcgrad_corpus_checkpoint").string();
  Linear model(3, 2);
  train::TrainState state;
  state.epoch = 1;
  state.step = 10;
  state.config = train::TrainConfig{}.to_json();
  state.generators["train_loader"] = Generator(5).state();
  state.extra = {{"finished", false}};
  train::save_checkpoint(dir, model, nullptr, state);
  const Bytes file = read_file_bytes(dir + "/" + train::kCheckpointFile);
  put(root, "checkpoint", "linear_checkpoint", Bytes{0} + file);
  const serialize::SafetensorsFile opened = serialize::load_safetensors(dir + "/" + train::kCheckpointFile);
  const std::string meta = opened.metadata.at("arcgrad.checkpoint");
  put(root, "checkpoint", "metadata_json", Bytes{1} + Bytes(meta.begin(), meta.end()));
  fs::remove_all(dir);
  std::cout << "corpus written to " << root << "\n";
  return 0;
}
