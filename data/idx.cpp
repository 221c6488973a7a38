#include "data/idx.h"

#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "data/file_io.h"

namespace ag {

namespace {

constexpr uint32_t kImagesMagic = 0x00000803;  // unsigned byte, 3 dimensions
constexpr uint32_t kLabelsMagic = 0x00000801;  // unsigned byte, 1 dimension

uint32_t read_be32(const std::vector<uint8_t>& b, size_t offset) {
  return (uint32_t(b[offset]) << 24) | (uint32_t(b[offset + 1]) << 16) | (uint32_t(b[offset + 2]) << 8) |
         uint32_t(b[offset + 3]);
}

void put_be32(std::vector<uint8_t>& b, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) b.push_back(static_cast<uint8_t>(v >> shift));
}

// Checks the magic and the size, returns the dimensions.
std::vector<int64_t> read_idx_header(const std::vector<uint8_t>& b, uint32_t magic, const std::string& path) {
  AG_CHECK(b.size() >= 4, path << ": too short for an IDX header (" << b.size() << " bytes)");
  uint32_t got = read_be32(b, 0);
  AG_CHECK(got == magic, path << ": wrong IDX magic number 0x" << std::hex << got << ", expected 0x" << magic
                              << (magic == kImagesMagic ? " (uint8 images)" : " (uint8 labels)"));
  size_t ndim = magic & 0xff;
  AG_CHECK(b.size() >= 4 + 4 * ndim, path << ": truncated IDX header");
  std::vector<int64_t> dims;
  size_t expected = 1;
  for (size_t d = 0; d < ndim; ++d) {
    dims.push_back(read_be32(b, 4 + 4 * d));
    expected *= static_cast<size_t>(dims.back());
  }
  size_t payload = b.size() - 4 - 4 * ndim;
  AG_CHECK(payload == expected,
           path << ": header promises " << expected << " data bytes, file has " << payload);
  return dims;
}

std::string find_idx_file(const std::string& dir, const std::string& name) {
  std::string gz = join_path(dir, name + ".gz");
  if (file_exists(gz)) return gz;
  std::string raw = join_path(dir, name);
  AG_CHECK(file_exists(raw), "missing file " << gz << " (nor " << raw << ")");
  return raw;
}

Dataset read_idx_split(const std::string& dir, Split split, const std::vector<std::string>& names) {
  std::string prefix = split == Split::train ? "train" : "t10k";
  AG_CHECK(std::filesystem::is_directory(dir), "IDX dataset: no such directory " << dir);
  // Two statements so the images file is looked for (and reported missing) first.
  std::string images = find_idx_file(dir, prefix + "-images-idx3-ubyte");
  std::string labels = find_idx_file(dir, prefix + "-labels-idx1-ubyte");
  Dataset d = read_idx(images, labels, names);
  d.set_source(dir);
  return d;
}

}  // namespace

const std::vector<std::string>& fashion_mnist_class_names() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                 "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

const std::vector<std::string>& mnist_class_names() {
  static const std::vector<std::string> names = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
  return names;
}

Dataset read_idx(const std::string& images_path, const std::string& labels_path,
                 const std::vector<std::string>& class_names) {
  std::vector<uint8_t> images = read_file_maybe_gzip(images_path);
  std::vector<int64_t> idims = read_idx_header(images, kImagesMagic, images_path);
  std::vector<uint8_t> labels = read_file_maybe_gzip(labels_path);
  std::vector<int64_t> ldims = read_idx_header(labels, kLabelsMagic, labels_path);
  AG_CHECK(idims[0] == ldims[0], images_path << " has " << idims[0] << " images but " << labels_path
                                             << " has " << ldims[0] << " labels");
  Dataset out(1, idims[1], idims[2], class_names);
  out.set_source(images_path);
  out.resize(idims[0]);
  const size_t image_bytes = static_cast<size_t>(out.image_bytes());
  for (int64_t i = 0; i < idims[0]; ++i) {
    int64_t label = labels[8 + static_cast<size_t>(i)];
    AG_CHECK(label < out.num_classes(), labels_path << ": label " << label << " of item " << i
                                                    << " (byte offset " << 8 + i << ") out of range [0, "
                                                    << out.num_classes() << ")");
    std::memcpy(out.mutable_image(i), images.data() + 16 + static_cast<size_t>(i) * image_bytes, image_bytes);
    out.set_label(i, label);
  }
  return out;
}

Dataset read_fashion_mnist(const std::string& dir, Split split) {
  return read_idx_split(dir, split, fashion_mnist_class_names());
}

Dataset read_mnist(const std::string& dir, Split split) {
  return read_idx_split(dir, split, mnist_class_names());
}

void write_idx_images(const Dataset& data, const std::string& path) {
  AG_CHECK(data.channels() == 1, "write_idx_images: IDX images have one channel, got " << data.channels());
  std::vector<uint8_t> b;
  put_be32(b, kImagesMagic);
  put_be32(b, static_cast<uint32_t>(data.size()));
  put_be32(b, static_cast<uint32_t>(data.height()));
  put_be32(b, static_cast<uint32_t>(data.width()));
  for (int64_t i = 0; i < data.size(); ++i)
    b.insert(b.end(), data.image(i), data.image(i) + data.image_bytes());
  write_file_bytes(path, b);
}

void write_idx_labels(const Dataset& data, const std::string& path) {
  std::vector<uint8_t> b;
  put_be32(b, kLabelsMagic);
  put_be32(b, static_cast<uint32_t>(data.size()));
  for (int64_t i = 0; i < data.size(); ++i) b.push_back(static_cast<uint8_t>(data.label(i)));
  write_file_bytes(path, b);
}

}  // namespace ag
