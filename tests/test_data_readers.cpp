// Readers on small files written here in the real formats: CIFAR-10 batches, CIFAR-100's two
// label bytes, IDX raw and gzip, PNG/JPEG image folders, and the open_dataset factory.
#include <stb/stb_image_write.h>

#include "data/cifar.h"
#include "data/idx.h"
#include "data/image_folder.h"
#include "data/open_dataset.h"
#include "test_data_util.h"

using namespace ag;
using namespace ag_test;

namespace {

// A CIFAR record: label bytes then 1024 R, 1024 G, 1024 B, pixels from pattern(i, ...).
void append_cifar_record(std::vector<uint8_t>& out, const std::vector<uint8_t>& labels, int64_t i) {
  out.insert(out.end(), labels.begin(), labels.end());
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x) out.push_back(pattern(i, c, y, x));
}

// CIFAR-10 layout with `per_batch` records per file; record i has label i % 10.
void write_cifar10_files(const std::string& dir, int per_batch) {
  int64_t i = 0;
  for (int b = 1; b <= 5; ++b) {
    std::vector<uint8_t> bytes;
    for (int r = 0; r < per_batch; ++r, ++i) append_cifar_record(bytes, {uint8_t(i % 10)}, i);
    write_bytes(dir + "/data_batch_" + std::to_string(b) + ".bin", bytes);
  }
  std::vector<uint8_t> test;
  for (int r = 0; r < per_batch; ++r) append_cifar_record(test, {uint8_t(9 - r % 10)}, 1000 + r);
  write_bytes(dir + "/test_batch.bin", test);
  // The official meta file ends with blank lines.
  write_text(dir + "/batches.meta.txt",
             "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n");
}

void check_pixels(const Dataset& d, int64_t index, int64_t pattern_index) {
  const uint8_t* img = d.image(index);
  bool same = true;
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x)
        same = same && img[(c * 32 + y) * 32 + x] == pattern(pattern_index, c, y, x);
  CHECK(same);
}

// IDX images [n,rows,cols] with pixel = pattern(i,0,y,x) and label i % 10.
std::vector<uint8_t> idx_images(int n, int rows, int cols) {
  std::vector<uint8_t> b = {0, 0, 8, 3, 0, 0, 0, uint8_t(n), 0, 0, 0, uint8_t(rows), 0, 0, 0, uint8_t(cols)};
  for (int i = 0; i < n; ++i)
    for (int y = 0; y < rows; ++y)
      for (int x = 0; x < cols; ++x) b.push_back(pattern(i, 0, y, x));
  return b;
}

std::vector<uint8_t> idx_labels(int n) {
  std::vector<uint8_t> b = {0, 0, 8, 1, 0, 0, 0, uint8_t(n)};
  for (int i = 0; i < n; ++i) b.push_back(uint8_t(i % 10));
  return b;
}

FolderOptions folder_options(int channels, int threads) {
  FolderOptions o;
  o.channels = channels;
  o.num_threads = threads;
  return o;
}

// A 3x4x5 HWC image whose pixels encode (class, index).
std::vector<uint8_t> small_hwc(int cls, int k) {
  std::vector<uint8_t> hwc;
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 5; ++x)
      for (int c = 0; c < 3; ++c) hwc.push_back(uint8_t(cls * 60 + k * 20 + y * 5 + x + c * 2));
  return hwc;
}

}  // namespace

TEST_CASE("CIFAR-10 binary: five train batches, test batch and class names") {
  TempDir dir;
  write_cifar10_files(dir.path(), 3);
  Dataset train = read_cifar10(dir.path(), Split::train);
  CHECK(train.size() == 15);
  CHECK(train.channels() == 3);
  CHECK(train.height() == 32);
  CHECK(train.width() == 32);
  CHECK(train.num_classes() == 10);
  CHECK(train.class_names()[9] == "truck");
  for (int64_t i = 0; i < 15; ++i) {
    CHECK(train.label(i) == i % 10);
    check_pixels(train, i, i);
  }
  Dataset test = read_cifar10(dir.path(), Split::test);
  CHECK(test.size() == 3);
  CHECK(test.label(1) == 8);
  check_pixels(test, 2, 1002);
  // get(): float CHW in [0,1]
  Example e = train.get(4);
  CHECK(e.image.shape() == Shape{3, 32, 32});
  CHECK(e.label == 4);
  CHECK(e.image.data<float>()[1024 + 32 + 2] == doctest::Approx(pattern(4, 1, 1, 2) / 255.0));
}

TEST_CASE("CIFAR-100 binary: coarse and fine label bytes") {
  TempDir dir;
  std::vector<uint8_t> bytes;
  const uint8_t coarse[4] = {19, 0, 7, 3}, fine[4] = {99, 4, 42, 10};
  for (int i = 0; i < 4; ++i) append_cifar_record(bytes, {coarse[i], fine[i]}, i);
  write_bytes(dir.file("train.bin"), bytes);
  std::string fine_names, coarse_names;
  for (int i = 0; i < 100; ++i) fine_names += "fine" + std::to_string(i) + "\n";
  for (int i = 0; i < 20; ++i) coarse_names += "coarse" + std::to_string(i) + "\r\n";  // CRLF is fine too
  write_text(dir.file("fine_label_names.txt"), fine_names);
  write_text(dir.file("coarse_label_names.txt"), coarse_names);

  Dataset f = read_cifar100(dir.path(), Split::train, CifarLabels::fine);
  CHECK(f.size() == 4);
  CHECK(f.num_classes() == 100);
  CHECK(f.class_names()[42] == "fine42");
  Dataset c = read_cifar100(dir.path(), Split::train, CifarLabels::coarse);
  CHECK(c.num_classes() == 20);
  CHECK(c.class_names()[19] == "coarse19");
  for (int i = 0; i < 4; ++i) {
    CHECK(f.label(i) == fine[i]);
    CHECK(c.label(i) == coarse[i]);
    check_pixels(f, i, i);
    check_pixels(c, i, i);
  }
}

TEST_CASE("CIFAR-100 names and superclass map are the official ones") {
  CHECK(cifar100_fine_names().size() == 100);
  CHECK(cifar100_fine_names()[0] == "apple");
  CHECK(cifar100_fine_names()[99] == "worm");
  CHECK(cifar100_coarse_names().size() == 20);
  std::vector<int64_t> map = cifar100_coarse_of_fine(cifar100_fine_names());
  std::vector<int> per_superclass(20, 0);
  for (int64_t c : map) ++per_superclass[static_cast<size_t>(c)];
  for (int n : per_superclass) CHECK(n == 5);
  CHECK(map[0] == 4);    // apple: fruit_and_vegetables
  CHECK(map[19] == 11);  // cattle: large_omnivores_and_herbivores
  CHECK(contains(error_of([] { cifar100_coarse_of_fine({"unicorn"}); }), "unicorn"));
}

TEST_CASE("IDX: raw and gzip files, Fashion-MNIST file names") {
  TempDir dir;
  write_gzip(dir.file("train-images-idx3-ubyte.gz"), idx_images(12, 5, 6));
  write_gzip(dir.file("train-labels-idx1-ubyte.gz"), idx_labels(12));
  write_bytes(dir.file("t10k-images-idx3-ubyte"), idx_images(3, 5, 6));  // uncompressed
  write_bytes(dir.file("t10k-labels-idx1-ubyte"), idx_labels(3));

  Dataset train = read_fashion_mnist(dir.path(), Split::train);
  CHECK(train.size() == 12);
  CHECK(train.channels() == 1);
  CHECK(train.height() == 5);
  CHECK(train.width() == 6);
  CHECK(train.class_names()[9] == "Ankle boot");
  CHECK(train.label(11) == 1);
  CHECK(train.image(7)[2 * 6 + 3] == pattern(7, 0, 2, 3));
  Dataset test = open_dataset("fashion-mnist", dir.path(), Split::test);
  CHECK(test.size() == 3);
  CHECK(test.image(2)[4 * 6 + 5] == pattern(2, 0, 4, 5));
  Dataset mnist = open_dataset("mnist", dir.path(), Split::test);
  CHECK(mnist.class_names()[3] == "3");
}

TEST_CASE("image folder: PNG and JPEG, classes sorted, stray files skipped") {
  TempDir dir;
  const std::vector<std::string> classes = {"zebra", "ant", "mole"};  // created out of order
  for (int cls = 0; cls < 3; ++cls) {
    for (int k = 0; k < 2; ++k) {
      std::string path = dir.path() + "/" + classes[cls] + "/img" + std::to_string(k) + ".png";
      std::filesystem::create_directories(dir.path() + "/" + classes[cls]);
      std::vector<uint8_t> hwc = small_hwc(cls, k);
      REQUIRE(stbi_write_png(path.c_str(), 5, 4, 3, hwc.data(), 5 * 3));
    }
  }
  write_text(dir.path() + "/ant/notes.txt", "not an image");
  write_text(dir.path() + "/ant/.hidden.png", "not an image either");
  std::filesystem::create_directories(dir.path() + "/.cache");

  Dataset d = read_image_folder(dir.path(), folder_options(3, 2));
  CHECK(d.class_names() == std::vector<std::string>{"ant", "mole", "zebra"});
  REQUIRE(d.size() == 6);
  CHECK(d.height() == 4);
  CHECK(d.width() == 5);
  // Sorted classes: ant (written as class 1), mole (2), zebra (0); files sorted within.
  const int written_class[3] = {1, 2, 0};
  for (int64_t i = 0; i < 6; ++i) {
    CHECK(d.label(i) == i / 2);
    std::vector<uint8_t> hwc = small_hwc(written_class[i / 2], static_cast<int>(i % 2));
    const uint8_t* chw = d.image(i);
    bool same = true;
    for (int c = 0; c < 3; ++c)
      for (int p = 0; p < 20; ++p) same = same && chw[c * 20 + p] == hwc[p * 3 + c];
    CHECK(same);
  }
  // Grey conversion keeps one channel.
  CHECK(read_image_folder(dir.path(), folder_options(1, 1)).channels() == 1);
}

TEST_CASE("image folder: JPEG decodes close to the original") {
  TempDir dir;
  std::filesystem::create_directories(dir.path() + "/a");
  std::vector<uint8_t> hwc(16 * 16 * 3);
  for (size_t k = 0; k < hwc.size(); k += 3) {
    hwc[k] = 200;
    hwc[k + 1] = 100;
    hwc[k + 2] = 50;
  }
  REQUIRE(stbi_write_jpg((dir.path() + "/a/x.jpg").c_str(), 16, 16, 3, hwc.data(), 95));
  REQUIRE(stbi_write_jpg((dir.path() + "/a/y.JPEG").c_str(), 16, 16, 3, hwc.data(), 95));
  Dataset d = read_image_folder(dir.path());
  REQUIRE(d.size() == 2);
  const uint8_t* chw = d.image(1);
  CHECK(std::abs(int(chw[0]) - 200) <= 3);
  CHECK(std::abs(int(chw[256 + 17]) - 100) <= 3);
  CHECK(std::abs(int(chw[512 + 255]) - 50) <= 3);
}

TEST_CASE("open_dataset: binary files or an image-folder tree") {
  TempDir bin;
  write_cifar10_files(bin.path(), 2);
  CHECK(open_dataset("cifar10", bin.path(), Split::train).size() == 10);

  // A CIFAR-100 tree of official fine names: coarse labels come from the superclass map.
  TempDir tree;
  for (const char* name : {"apple", "whale"}) {
    std::string folder = tree.path() + "/test/" + name;
    std::filesystem::create_directories(folder);
    std::vector<uint8_t> hwc(32 * 32 * 3, 77);
    REQUIRE(stbi_write_png((folder + "/0.png").c_str(), 32, 32, 3, hwc.data(), 96));
  }
  DatasetOptions options;
  options.cifar100_labels = CifarLabels::coarse;
  Dataset coarse = open_dataset("cifar100", tree.path(), Split::test, options);
  CHECK(coarse.num_classes() == 20);
  CHECK(coarse.label(0) == 4);  // apple: fruit_and_vegetables
  CHECK(coarse.label(1) == 0);  // whale: aquatic_mammals
  CHECK(open_dataset("folder", tree.path(), Split::test).num_classes() == 2);
  CHECK(contains(error_of([&] { open_dataset("imagenet", tree.path(), Split::test); }), "imagenet"));
  CHECK(contains(error_of([&] { open_dataset("folder", tree.path(), Split::train); }), "/train"));
}

TEST_CASE("Dataset: subset, class counts, label checks") {
  Dataset d(1, 2, 2, {"x", "y"});
  const uint8_t a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8};
  d.add(a, 0);
  d.add(b, 1);
  d.add(a, 1);
  CHECK(d.class_counts() == std::vector<int64_t>{1, 2});
  Dataset s = d.subset({1, 0});
  CHECK(s.size() == 2);
  CHECK(s.label(0) == 1);
  CHECK(s.image(0)[3] == 8);
  CHECK(contains(error_of([&] { d.add(a, 2); }), "label 2"));
  CHECK(contains(error_of([&] { d.image(3); }), "index 3"));
}

TEST_CASE("Dataset: with_border puts each image inside a zero border, labels kept") {
  Dataset d(2, 1, 2, {"x", "y"});
  const uint8_t a[4] = {1, 2, 3, 4};  // channel 0: 1 2, channel 1: 3 4
  d.add(a, 1);
  const Dataset b = d.with_border(1);
  CHECK(b.height() == 3);
  CHECK(b.width() == 4);
  CHECK(b.label(0) == 1);
  const std::vector<uint8_t> got(b.image(0), b.image(0) + b.image_bytes());
  CHECK(got == std::vector<uint8_t>{0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0,  //
                                    0, 0, 0, 0, 0, 3, 4, 0, 0, 0, 0, 0});
  CHECK(d.with_border(0).image(0)[3] == 4);
  CHECK(contains(error_of([&] { d.with_border(-1); }), "border"));
}
