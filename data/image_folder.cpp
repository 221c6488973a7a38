#include "data/image_folder.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <thread>

#include "core/error.h"
#include "data/file_io.h"

namespace ag {

namespace fs = std::filesystem;

namespace {

bool is_image_name(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return std::tolower(ch); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp";
}

struct FileList {
  std::vector<std::string> class_names;
  std::vector<std::string> paths;
  std::vector<int64_t> labels;
};

// Hidden entries (".DS_Store", "._x.jpg") and non-image files are skipped.
FileList list_image_folder(const std::string& root) {
  AG_CHECK(fs::is_directory(root), "image folder: no such directory " << root);
  FileList list;
  for (const auto& entry : fs::directory_iterator(root)) {
    std::string name = entry.path().filename().string();
    if (entry.is_directory() && name[0] != '.') list.class_names.push_back(name);
  }
  std::sort(list.class_names.begin(), list.class_names.end());
  AG_CHECK(!list.class_names.empty(), "image folder " << root << ": no class subfolders");
  for (size_t c = 0; c < list.class_names.size(); ++c) {
    std::vector<std::string> files;
    for (const auto& entry : fs::directory_iterator(join_path(root, list.class_names[c]))) {
      std::string name = entry.path().filename().string();
      if (entry.is_regular_file() && name[0] != '.' && is_image_name(entry.path())) {
        files.push_back(entry.path().string());
      }
    }
    AG_CHECK(!files.empty(), "image folder " << root << ": class folder '" << list.class_names[c]
                                             << "' has no .png/.jpg/.jpeg/.bmp images");
    std::sort(files.begin(), files.end());
    for (auto& f : files) {
      list.paths.push_back(std::move(f));
      list.labels.push_back(static_cast<int64_t>(c));
    }
  }
  return list;
}

void store_image(const DecodedImage& img, const std::string& path, int64_t i, Dataset& out) {
  AG_CHECK(img.channels == out.channels() && img.height == out.height() && img.width == out.width(),
           path << ": image is " << img.channels << "x" << img.height << "x" << img.width
                << ", but the folder's "
                << "first image is " << out.channels() << "x" << out.height() << "x" << out.width()
                << " (all images must share one size)");
  std::memcpy(out.mutable_image(i), img.chw.data(), img.chw.size());
}

// Decodes images [1, n) on worker threads, each a strided share; the first error (by file
// order, so the message does not depend on timing) is rethrown.
void decode_rest(const FileList& list, const FolderOptions& options, int channels, int num_threads,
                 Dataset& out) {
  const int64_t n = static_cast<int64_t>(list.paths.size());
  std::vector<std::exception_ptr> errors(static_cast<size_t>(num_threads));
  std::vector<int64_t> error_index(static_cast<size_t>(num_threads), n);
  auto work = [&](int t) {
    for (int64_t i = 1 + t; i < n; i += num_threads) {
      try {
        const std::string& path = list.paths[static_cast<size_t>(i)];
        store_image(decode_image(read_file_bytes(path), channels, path), path, i, out);
        // Thread 0 reports for everyone: the shares are equal, so i is close to the total done.
        if (t == 0 && options.progress && (i - 1) % 2048 == 0) options.progress(i, n);
      } catch (...) {
        errors[static_cast<size_t>(t)] = std::current_exception();
        error_index[static_cast<size_t>(t)] = i;
        return;
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < num_threads; ++t) threads.emplace_back(work, t);
  for (auto& th : threads) th.join();
  auto first = std::min_element(error_index.begin(), error_index.end());
  if (*first < n) std::rethrow_exception(errors[static_cast<size_t>(first - error_index.begin())]);
}

}  // namespace

Dataset read_image_folder(const std::string& root, const FolderOptions& options) {
  FileList list = list_image_folder(root);
  // The first image fixes the size (and the channel count when channels is 0).
  const std::string& first_path = list.paths[0];
  DecodedImage first = decode_image(read_file_bytes(first_path), options.channels, first_path);
  Dataset out(first.channels, first.height, first.width, list.class_names);
  out.set_source(root);
  out.resize(static_cast<int64_t>(list.paths.size()));
  store_image(first, first_path, 0, out);
  for (size_t i = 0; i < list.labels.size(); ++i) out.set_label(static_cast<int64_t>(i), list.labels[i]);
  int threads = options.num_threads > 0 ? options.num_threads
                                        : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  decode_rest(list, options, first.channels, threads, out);
  if (options.progress) options.progress(out.size(), out.size());
  return out;
}

void write_image_folder(const Dataset& data, const std::string& root, ImageFormat format, int jpeg_quality) {
  const char* ext = format == ImageFormat::png ? ".png" : ".jpg";
  for (const auto& name : data.class_names()) fs::create_directories(join_path(root, name));
  for (int64_t i = 0; i < data.size(); ++i) {
    char file[32];
    std::snprintf(file, sizeof file, "%05lld%s", static_cast<long long>(i), ext);
    std::string path =
        join_path(join_path(root, data.class_names()[static_cast<size_t>(data.label(i))]), file);
    write_file_bytes(
        path, encode_image(data.image(i), static_cast<int>(data.channels()), static_cast<int>(data.height()),
                           static_cast<int>(data.width()), format, jpeg_quality));
  }
}

}  // namespace ag
