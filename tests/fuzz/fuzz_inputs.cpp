#include "fuzz_inputs.h"

#include <unistd.h>
#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "apps/lib/checkpoint.h"
#include "apps/lib/train_config.h"
#include "core/error.h"
#include "core/serialize/safetensors.h"
#include "data/cifar.h"
#include "data/idx.h"
#include "data/image_folder.h"

namespace ag::fuzz {

namespace fs = std::filesystem;

namespace {

// A folder of this process's own (in memory when /dev/shm exists: one file per input),
// removed at exit. Never destroyed, so the exit handler may still use it.
const fs::path& scratch() {
  static const fs::path* dir = [] {
    const fs::path base = fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    auto* d = new fs::path(base / ("arcgrad_fuzz_" + std::to_string(::getpid())));
    fs::remove_all(*d);
    fs::create_directories(*d);
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(scratch(), ec);
    });
    return d;
  }();
  return *dir;
}

void write(const fs::path& path, Input bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// Runs a reader; ag::Error is the expected way to reject an input (false).
template <class F>
bool expect_only_ag_errors(F&& read) {
  try {
    read();
    return true;
  } catch (const Error&) {
    return false;
  }
}

// Input minus its first `n` bytes (empty when shorter).
Input after(Input data, size_t n) { return data.size() > n ? data.subspan(n) : Input(); }

// The 16-bit big-endian split point at bytes 1-2, clamped to the rest's size.
size_t split_point(Input data, size_t rest) {
  if (data.size() < 3) return 0;
  return std::min<size_t>(rest, static_cast<size_t>(data[1]) << 8 | data[2]);
}

std::vector<uint8_t> gzip(Input bytes) {
  z_stream z{};
  deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);  // 16: gzip wrapper
  std::vector<uint8_t> out(deflateBound(&z, bytes.size()) + 32);
  z.next_in = const_cast<Bytef*>(bytes.data());
  z.avail_in = static_cast<uInt>(bytes.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

}  // namespace

bool cifar(Input data) {
  const uint8_t mode = data.empty() ? 0 : data[0];
  const bool hundred = mode & 1, coarse = mode & 2, meta = mode & 4;
  const Input file = after(data, 1);
  const fs::path dir = scratch() / "cifar";
  fs::create_directories(dir);
  const bool accepted = expect_only_ag_errors([&] {
    if (meta) {  // class names, then one valid record per split
      write(dir / "batches.meta.txt", file);
      std::vector<uint8_t> record(1 + kCifarImageBytes, 0);
      write(dir / "test_batch.bin", record);
      read_cifar10(dir.string(), Split::test);
      return;
    }
    const fs::path path = dir / "records.bin";
    write(path, file);
    const std::vector<std::string>& names =
        !hundred ? mnist_class_names() : coarse ? cifar100_coarse_names() : cifar100_fine_names();
    Dataset out(3, 32, 32, names);  // 10, 20 or 100 classes
    read_cifar_records(path.string(), hundred ? 2 : 1, hundred && !coarse ? 1 : 0, out);
  });
  fs::remove(dir / "batches.meta.txt");
  return accepted;
}

bool idx(Input data) {
  const int mode = data.empty() ? 0 : data[0] % 3;
  const Input rest = after(data, 3);
  const size_t split = split_point(data, rest.size());
  const Input images = rest.first(split), labels = rest.subspan(split);
  const fs::path dir = scratch() / "idx";
  fs::create_directories(dir);
  const fs::path images_path = dir / (mode == 0 ? "images" : "images.gz");
  const fs::path labels_path = dir / (mode == 0 ? "labels" : "labels.gz");
  if (mode == 1) {
    write(images_path, gzip(images));
    write(labels_path, gzip(labels));
  } else {
    write(images_path, images);
    write(labels_path, labels);
  }
  return expect_only_ag_errors([&] { read_idx(images_path.string(), labels_path.string(), mnist_class_names()); });
}

bool image_folder(Input data) {
  static const int kChannels[] = {0, 1, 3};
  FolderOptions options;
  options.channels = kChannels[data.empty() ? 0 : data[0] % 3];
  options.num_threads = 1;
  const Input rest = after(data, 3);
  const size_t split = split_point(data, rest.size());
  const fs::path root = scratch() / "folder";
  fs::create_directories(root / "class");
  write(root / "class" / "a.png", rest.first(split));
  write(root / "class" / "b.jpg", rest.subspan(split));
  return expect_only_ag_errors([&] { read_image_folder(root.string(), options); });
}

bool safetensors(Input data) {
  const fs::path path = scratch() / "file.safetensors";
  write(path, data);
  return expect_only_ag_errors([&] { serialize::load_safetensors(path.string()); });
}

bool checkpoint(Input data) {
  const fs::path dir = scratch() / "checkpoint";
  fs::create_directories(dir);
  const Input rest = after(data, 1);
  if (!data.empty() && (data[0] & 1)) {
    nlohmann::json header = {{"__metadata__", {{"arcgrad.checkpoint", std::string(rest.begin(), rest.end())}}}};
    std::string text = header.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    text.resize((text.size() + 7) / 8 * 8, ' ');
    std::vector<uint8_t> file(8 + text.size());
    for (int i = 0; i < 8; ++i) file[static_cast<size_t>(i)] = static_cast<uint8_t>(text.size() >> (8 * i));
    std::copy(text.begin(), text.end(), file.begin() + 8);
    write(dir / train::kCheckpointFile, file);
  } else {
    write(dir / train::kCheckpointFile, rest);
  }
  return expect_only_ag_errors([&] {
    const train::TrainState state = train::read_checkpoint_state(dir.string());
    train::TrainConfig::from_json(state.config).validate();
  });
}

const std::vector<Target>& targets() {
  static const std::vector<Target> all = {{"cifar", cifar},
                                          {"idx", idx},
                                          {"image_folder", image_folder},
                                          {"safetensors", safetensors},
                                          {"checkpoint", checkpoint}};
  return all;
}

}  // namespace ag::fuzz
