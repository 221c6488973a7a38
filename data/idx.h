// IDX files (http://yann.lecun.com/exdb/mnist/), as used by MNIST and Fashion-MNIST, plain or
// gzip-compressed: images magic 0x00000803 + N, rows, cols (big-endian int32) then N*rows*cols
// bytes; labels magic 0x00000801 + N then N bytes.
#pragma once

#include <string>
#include <vector>

#include "data/dataset.h"

namespace ag {

// Where Debian's dataset-fashion-mnist package installs the four .gz files.
constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

const std::vector<std::string>& fashion_mnist_class_names();
const std::vector<std::string>& mnist_class_names();  // "0" .. "9"

// Images [N,1,rows,cols] with labels checked against class_names.
Dataset read_idx(const std::string& images_path, const std::string& labels_path,
                 const std::vector<std::string>& class_names);
// dir holds train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-...; the .gz
// name is tried first, then the plain one.
Dataset read_fashion_mnist(const std::string& dir, Split split);
Dataset read_mnist(const std::string& dir, Split split);

// Writes uint8 IDX files (used by the tests; raw, the caller may gzip them).
void write_idx_images(const Dataset& data, const std::string& path);
void write_idx_labels(const Dataset& data, const std::string& path);

}  // namespace ag
