#include "data/cifar.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "core/error.h"
#include "data/file_io.h"

namespace ag {

void read_cifar_records(const std::string& path, int label_bytes, int label_index, Dataset& out) {
  AG_CHECK(out.image_bytes() == kCifarImageBytes, "read_cifar_records: dataset must be 3x32x32");
  AG_CHECK(file_exists(path), "missing file " << path);
  const size_t size = static_cast<size_t>(std::filesystem::file_size(path));
  const size_t record = static_cast<size_t>(label_bytes + kCifarImageBytes);
  AG_CHECK(size > 0, path << ": empty file");
  AG_CHECK(size % record == 0, path << ": size " << size << " bytes is not a whole number of " << record
                                    << "-byte records (" << size / record << " records + " << size % record
                                    << " bytes)");
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  AG_CHECK(file, "cannot open " << path << ": " << std::strerror(errno));
  const int64_t n = static_cast<int64_t>(size / record);
  const int64_t first = out.size();
  out.resize(first + n);
  // Read in chunks straight into the dataset: no second copy of a 150 MB file in memory.
  constexpr int64_t kChunk = 1024;
  std::vector<uint8_t> chunk(static_cast<size_t>(std::min(kChunk, n)) * record);
  for (int64_t r0 = 0; r0 < n; r0 += kChunk) {
    const int64_t count = std::min(kChunk, n - r0);
    size_t got = std::fread(chunk.data(), record, static_cast<size_t>(count), file.get());
    AG_CHECK(got == static_cast<size_t>(count),
             path << ": read failed at record " << r0 + static_cast<int64_t>(got));
    for (int64_t k = 0; k < count; ++k) {
      const uint8_t* rec = chunk.data() + static_cast<size_t>(k) * record;
      const int64_t r = r0 + k;
      int64_t label = rec[label_index];
      AG_CHECK(label < out.num_classes(),
               path << ": record " << r << " (byte offset " << r * static_cast<int64_t>(record) + label_index
                    << ") has label " << label << ", expected 0.." << out.num_classes() - 1);
      std::memcpy(out.mutable_image(first + r), rec + label_bytes, kCifarImageBytes);
      out.set_label(first + r, label);
    }
  }
}

namespace {

std::vector<std::string> cifar10_names(const std::string& dir) {
  std::string meta = join_path(dir, "batches.meta.txt");
  if (!file_exists(meta)) {
    return {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
  }
  return read_name_list(meta);
}

}  // namespace

Dataset read_cifar10(const std::string& dir, Split split) {
  AG_CHECK(std::filesystem::is_directory(dir), "CIFAR-10: no such directory " << dir);
  Dataset out(3, 32, 32, cifar10_names(dir));
  out.set_source(dir);
  if (split == Split::test) {
    read_cifar_records(join_path(dir, "test_batch.bin"), 1, 0, out);
  } else {
    int64_t total_bytes = 0;
    for (int b = 1; b <= kCifar10TrainBatches; ++b) {
      std::string path = join_path(dir, "data_batch_" + std::to_string(b) + ".bin");
      if (file_exists(path)) total_bytes += static_cast<int64_t>(std::filesystem::file_size(path));
    }
    out.reserve(total_bytes / (1 + kCifarImageBytes));
    for (int b = 1; b <= kCifar10TrainBatches; ++b) {
      read_cifar_records(join_path(dir, "data_batch_" + std::to_string(b) + ".bin"), 1, 0, out);
    }
  }
  return out;
}

Dataset read_cifar100(const std::string& dir, Split split, CifarLabels labels) {
  AG_CHECK(std::filesystem::is_directory(dir), "CIFAR-100: no such directory " << dir);
  bool fine = labels == CifarLabels::fine;
  std::string names_file = join_path(dir, fine ? "fine_label_names.txt" : "coarse_label_names.txt");
  std::vector<std::string> names;
  if (file_exists(names_file)) {
    names = read_name_list(names_file);
  } else {
    names = fine ? cifar100_fine_names() : cifar100_coarse_names();
  }
  Dataset out(3, 32, 32, names);
  out.set_source(dir);
  read_cifar_records(join_path(dir, split == Split::train ? "train.bin" : "test.bin"), 2, fine ? 1 : 0, out);
  return out;
}

void write_cifar_records(const Dataset& data, const std::vector<int64_t>* coarse_of_fine, int64_t begin,
                         int64_t end, const std::string& path) {
  AG_CHECK(data.image_bytes() == kCifarImageBytes, "CIFAR writer: images must be 3x32x32, "
                                                       << data.source() << " has " << data.channels() << "x"
                                                       << data.height() << "x" << data.width());
  AG_CHECK(data.num_classes() <= 256, "CIFAR writer: at most 256 classes fit a label byte");
  const int label_bytes = coarse_of_fine ? 2 : 1;
  const size_t record = static_cast<size_t>(label_bytes + kCifarImageBytes);
  std::vector<uint8_t> bytes(static_cast<size_t>(end - begin) * record);
  for (int64_t i = begin; i < end; ++i) {
    uint8_t* rec = bytes.data() + static_cast<size_t>(i - begin) * record;
    int64_t label = data.label(i);
    if (coarse_of_fine) rec[0] = static_cast<uint8_t>((*coarse_of_fine)[static_cast<size_t>(label)]);
    rec[label_bytes - 1] = static_cast<uint8_t>(label);
    std::memcpy(rec + label_bytes, data.image(i), kCifarImageBytes);
  }
  write_file_bytes(path, bytes);
}

namespace {

void write_names(const std::vector<std::string>& names, const std::string& path) {
  std::string text;
  for (const auto& n : names) text += n + "\n";
  write_file_bytes(path, std::vector<uint8_t>(text.begin(), text.end()));
}

}  // namespace

void write_cifar10(const Dataset& train, const Dataset& test, const std::string& dir) {
  AG_CHECK(train.class_names() == test.class_names(), "write_cifar10: train and test classes differ");
  std::filesystem::create_directories(dir);
  const int64_t per_batch = (train.size() + kCifar10TrainBatches - 1) / kCifar10TrainBatches;
  for (int b = 0; b < kCifar10TrainBatches; ++b) {
    int64_t begin = std::min(train.size(), b * per_batch);
    int64_t end = std::min(train.size(), begin + per_batch);
    write_cifar_records(train, nullptr, begin, end,
                        join_path(dir, "data_batch_" + std::to_string(b + 1) + ".bin"));
  }
  write_cifar_records(test, nullptr, 0, test.size(), join_path(dir, "test_batch.bin"));
  write_names(train.class_names(), join_path(dir, "batches.meta.txt"));
}

void write_cifar100(const Dataset& train, const Dataset& test, const std::vector<int64_t>& coarse_of_fine,
                    const std::vector<std::string>& coarse_names, const std::string& dir) {
  AG_CHECK(train.class_names() == test.class_names(), "write_cifar100: train and test classes differ");
  AG_CHECK(static_cast<int64_t>(coarse_of_fine.size()) == train.num_classes(),
           "write_cifar100: " << coarse_of_fine.size() << " superclass entries for " << train.num_classes()
                              << " classes");
  for (int64_t c : coarse_of_fine) {
    AG_CHECK(c >= 0 && c < static_cast<int64_t>(coarse_names.size()),
             "write_cifar100: superclass " << c << " out of range [0, " << coarse_names.size() << ")");
  }
  std::filesystem::create_directories(dir);
  write_cifar_records(train, &coarse_of_fine, 0, train.size(), join_path(dir, "train.bin"));
  write_cifar_records(test, &coarse_of_fine, 0, test.size(), join_path(dir, "test.bin"));
  write_names(train.class_names(), join_path(dir, "fine_label_names.txt"));
  write_names(coarse_names, join_path(dir, "coarse_label_names.txt"));
}

}  // namespace ag
