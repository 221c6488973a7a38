// Corrupt or missing input: each case is one ag::Error naming the file (and the record or
// byte offset), never a crash or silently wrong data.
#include "data/cifar.h"
#include "data/file_io.h"
#include "data/idx.h"
#include "data/image_folder.h"
#include "test_data_util.h"

using namespace ag;
using namespace ag_test;

namespace {

std::vector<uint8_t> cifar10_records(int n, int bad_record = -1, uint8_t bad_label = 0) {
  std::vector<uint8_t> b;
  for (int r = 0; r < n; ++r) {
    b.push_back(r == bad_record ? bad_label : uint8_t(r % 10));
    b.insert(b.end(), 3072, uint8_t(r));
  }
  return b;
}

void write_cifar10_set(const std::string& dir) {
  for (int k = 1; k <= 5; ++k)
    write_bytes(dir + "/data_batch_" + std::to_string(k) + ".bin", cifar10_records(2));
  write_bytes(dir + "/test_batch.bin", cifar10_records(2));
}

std::vector<uint8_t> idx_header(uint32_t magic, std::vector<uint32_t> dims) {
  std::vector<uint8_t> b;
  dims.insert(dims.begin(), magic);
  for (uint32_t v : dims)
    for (int s = 24; s >= 0; s -= 8) b.push_back(uint8_t(v >> s));
  return b;
}

}  // namespace

TEST_CASE("missing files are named") {
  TempDir dir;
  write_cifar10_set(dir.path());
  std::filesystem::remove(dir.file("data_batch_3.bin"));
  std::string msg = error_of([&] { read_cifar10(dir.path(), Split::train); });
  CHECK(contains(msg, "missing file"));
  CHECK(contains(msg, dir.file("data_batch_3.bin")));
  CHECK(contains(error_of([&] { read_cifar100(dir.path(), Split::test); }), dir.file("test.bin")));
  CHECK(contains(error_of([&] { read_cifar10(dir.file("nowhere"), Split::test); }), "nowhere"));
  msg = error_of([&] { read_fashion_mnist(dir.path(), Split::train); });
  CHECK(contains(msg, "train-images-idx3-ubyte"));
}

TEST_CASE("a size that is not a whole number of records") {
  TempDir dir;
  write_cifar10_set(dir.path());
  std::vector<uint8_t> bytes = cifar10_records(3);
  bytes.resize(bytes.size() - 5);
  write_bytes(dir.file("test_batch.bin"), bytes);
  std::string msg = error_of([&] { read_cifar10(dir.path(), Split::test); });
  CHECK(contains(msg, dir.file("test_batch.bin")));
  CHECK(contains(msg, "not a whole number of 3073-byte records"));
  // CIFAR-100 records are 3074 bytes: a CIFAR-10 file of 2 records does not fit.
  write_bytes(dir.file("train.bin"), cifar10_records(2));
  CHECK(contains(error_of([&] { read_cifar100(dir.path(), Split::train); }), "3074-byte records"));
  write_bytes(dir.file("test.bin"), {});
  CHECK(contains(error_of([&] { read_cifar100(dir.path(), Split::test); }), "empty file"));
}

TEST_CASE("labels out of range name the record and offset") {
  TempDir dir;
  write_cifar10_set(dir.path());
  write_bytes(dir.file("data_batch_2.bin"), cifar10_records(4, 2, 10));
  std::string msg = error_of([&] { read_cifar10(dir.path(), Split::train); });
  CHECK(contains(msg, dir.file("data_batch_2.bin")));
  CHECK(contains(msg, "record 2"));
  CHECK(contains(msg, "byte offset 6146"));
  CHECK(contains(msg, "label 10"));
  // CIFAR-100: a fine label of 100 in record 1.
  std::vector<uint8_t> b;
  for (int r = 0; r < 2; ++r) {
    b.push_back(0);
    b.push_back(r == 1 ? 100 : 5);
    b.insert(b.end(), 3072, 0);
  }
  write_bytes(dir.file("train.bin"), b);
  msg = error_of([&] { read_cifar100(dir.path(), Split::train, CifarLabels::fine); });
  CHECK(contains(msg, "record 1"));
  CHECK(contains(msg, "label 100"));
  CHECK(read_cifar100(dir.path(), Split::train, CifarLabels::coarse).size() == 2);  // coarse bytes are fine
  // IDX: label 12 at item 1.
  std::vector<uint8_t> labels = idx_header(0x801, {2});
  labels.push_back(3);
  labels.push_back(12);
  std::vector<uint8_t> images = idx_header(0x803, {2, 2, 2});
  images.insert(images.end(), 8, 0);
  write_bytes(dir.file("train-labels-idx1-ubyte"), labels);
  write_bytes(dir.file("train-images-idx3-ubyte"), images);
  msg = error_of([&] { read_fashion_mnist(dir.path(), Split::train); });
  CHECK(contains(msg, "item 1 (byte offset 9)"));
}

TEST_CASE("IDX: wrong magic, truncated data, count mismatch, corrupt gzip") {
  TempDir dir;
  std::vector<uint8_t> images = idx_header(0x803, {2, 2, 2});
  images.insert(images.end(), 8, 1);
  std::vector<uint8_t> labels = idx_header(0x801, {2});
  labels.insert(labels.end(), {1, 2});
  write_bytes(dir.file("i"), images);
  write_bytes(dir.file("l"), labels);
  CHECK(read_idx(dir.file("i"), dir.file("l"), mnist_class_names()).size() == 2);

  std::string msg = error_of([&] { read_idx(dir.file("l"), dir.file("l"), mnist_class_names()); });
  CHECK(contains(msg, dir.file("l")));
  CHECK(contains(msg, "wrong IDX magic number 0x801"));

  std::vector<uint8_t> short_images(images.begin(), images.end() - 3);
  write_bytes(dir.file("short"), short_images);
  CHECK(contains(error_of([&] { read_idx(dir.file("short"), dir.file("l"), mnist_class_names()); }),
                 "header promises 8 data bytes, file has 5"));

  std::vector<uint8_t> three = idx_header(0x801, {3});
  three.insert(three.end(), {1, 2, 3});
  write_bytes(dir.file("three"), three);
  CHECK(contains(error_of([&] { read_idx(dir.file("i"), dir.file("three"), mnist_class_names()); }),
                 "has 2 images but"));

  write_gzip(dir.file("i.gz"), images);
  std::vector<uint8_t> gz = read_file_bytes(dir.file("i.gz"));
  gz.resize(gz.size() / 2);
  write_bytes(dir.file("cut.gz"), gz);
  msg = error_of([&] { read_idx(dir.file("cut.gz"), dir.file("l"), mnist_class_names()); });
  CHECK(contains(msg, dir.file("cut.gz")));
  CHECK(contains(msg, "gzip"));
}

TEST_CASE("image folder: undecodable image, mixed sizes, empty class") {
  TempDir dir;
  std::vector<uint8_t> png =
      encode_image(std::vector<uint8_t>(3 * 4 * 4, 9).data(), 3, 4, 4, ImageFormat::png);
  write_bytes(dir.path() + "/a/0.png", png);
  write_bytes(dir.path() + "/a/1.png", png);
  write_bytes(dir.path() + "/b/0.png", png);
  write_text(dir.path() + "/b/1.png", "this is not a PNG");
  std::string msg = error_of([&] { read_image_folder(dir.path()); });
  CHECK(contains(msg, dir.path() + "/b/1.png"));
  CHECK(contains(msg, "cannot decode image"));

  write_bytes(dir.path() + "/b/1.png",
              encode_image(std::vector<uint8_t>(3 * 5 * 4, 9).data(), 3, 5, 4, ImageFormat::png));
  msg = error_of([&] { read_image_folder(dir.path()); });
  CHECK(contains(msg, "b/1.png: image is 3x5x4"));

  std::filesystem::remove(dir.path() + "/b/1.png");
  std::filesystem::create_directories(dir.path() + "/c");
  CHECK(contains(error_of([&] { read_image_folder(dir.path()); }), "'c' has no"));
  std::filesystem::remove(dir.path() + "/c");
  CHECK(read_image_folder(dir.path()).size() == 3);
}
