#include "data/dataset.h"

#include <algorithm>
#include <cstring>
#include <fstream>

#include "core/error.h"
#include "data/resize.h"

namespace ag {

const char* split_name(Split split) { return split == Split::train ? "train" : "test"; }

Dataset::Dataset(int64_t channels, int64_t height, int64_t width, std::vector<std::string> class_names)
    : channels_(channels), height_(height), width_(width), class_names_(std::move(class_names)) {
  AG_CHECK(channels > 0 && height > 0 && width > 0,
           "Dataset: image size must be positive, got " << channels << "x" << height << "x" << width);
  AG_CHECK(!class_names_.empty(), "Dataset: at least one class is needed");
}

void Dataset::check_index(int64_t i) const {
  AG_CHECK(i >= 0 && i < size(),
           "Dataset " << source_ << ": index " << i << " out of range [0, " << size() << ")");
}

const uint8_t* Dataset::image(int64_t i) const {
  check_index(i);
  return pixels_.data() + i * image_bytes();
}

int64_t Dataset::label(int64_t i) const {
  check_index(i);
  return labels_[static_cast<size_t>(i)];
}

Example Dataset::get(int64_t i) const {
  const uint8_t* src = image(i);
  Tensor t = Tensor::empty({channels_, height_, width_}, DType::f32);
  float* dst = t.data<float>();
  for (int64_t k = 0; k < image_bytes(); ++k) dst[k] = src[k] * (1.0f / 255.0f);
  return {t, label(i)};
}

void Dataset::reserve(int64_t n) {
  pixels_.reserve(static_cast<size_t>(n * image_bytes()));
  labels_.reserve(static_cast<size_t>(n));
}

void Dataset::resize(int64_t n) {
  AG_CHECK(n >= 0, "Dataset::resize: negative size " << n);
  pixels_.resize(static_cast<size_t>(n * image_bytes()));
  labels_.resize(static_cast<size_t>(n), 0);
}

uint8_t* Dataset::mutable_image(int64_t i) {
  check_index(i);
  return pixels_.data() + i * image_bytes();
}

void Dataset::set_label(int64_t i, int64_t label) {
  check_index(i);
  AG_CHECK(label >= 0 && label < num_classes(), "Dataset " << source_ << ": label " << label << " of example "
                                                           << i << " out of range [0, " << num_classes()
                                                           << ")");
  labels_[static_cast<size_t>(i)] = static_cast<int32_t>(label);
}

void Dataset::add(const uint8_t* chw, int64_t label) {
  // Checked before growing, so a bad label leaves the dataset as it was.
  AG_CHECK(label >= 0 && label < num_classes(),
           "Dataset " << source_ << ": label " << label << " out of range [0, " << num_classes() << ")");
  int64_t i = size();
  resize(i + 1);
  std::memcpy(mutable_image(i), chw, static_cast<size_t>(image_bytes()));
  set_label(i, label);
}

Dataset Dataset::subset(const std::vector<int64_t>& indices) const {
  Dataset out(channels_, height_, width_, class_names_);
  out.set_source(source_);
  out.resize(static_cast<int64_t>(indices.size()));
  for (size_t k = 0; k < indices.size(); ++k) {
    int64_t i = static_cast<int64_t>(k);
    std::memcpy(out.mutable_image(i), image(indices[k]), static_cast<size_t>(image_bytes()));
    out.set_label(i, label(indices[k]));
  }
  return out;
}

Dataset Dataset::with_border(int64_t border) const {
  AG_CHECK(border >= 0, "Dataset::with_border: the border must be 0 or more pixels, got " << border);
  const int64_t h = height_ + 2 * border, w = width_ + 2 * border;
  Dataset out(channels_, h, w, class_names_);
  out.set_source(source_);
  out.resize(size());
  for (int64_t i = 0; i < size(); ++i) {
    add_border(image(i), channels_, height_, width_, border, out.mutable_image(i));
    out.set_label(i, label(i));
  }
  return out;
}

std::vector<int64_t> Dataset::class_counts() const {
  std::vector<int64_t> counts(static_cast<size_t>(num_classes()), 0);
  for (int32_t l : labels_) ++counts[static_cast<size_t>(l)];
  return counts;
}

std::vector<std::string> read_name_list(const std::string& path) {
  std::ifstream in(path);
  AG_CHECK(in, "cannot open " << path);
  std::vector<std::string> names;
  std::string line;
  while (std::getline(in, line)) {
    // Trim whitespace and a Windows '\r' so names compare equal wherever the file came from.
    size_t begin = line.find_first_not_of(" \t\r");
    if (begin == std::string::npos) continue;
    size_t end = line.find_last_not_of(" \t\r");
    names.push_back(line.substr(begin, end - begin + 1));
  }
  AG_CHECK(!names.empty(), path << ": no names in the file");
  return names;
}

}  // namespace ag
