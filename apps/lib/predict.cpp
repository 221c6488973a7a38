// Predictions for image files; see predict.h.
#include "apps/lib/predict.h"

#include <algorithm>
#include <filesystem>
#include <iomanip>
#include <numeric>
#include <sstream>

#include "core/autograd.h"
#include "core/ops.h"
#include "data/file_io.h"
#include "data/resize.h"

namespace ag::train {

namespace fs = std::filesystem;

namespace {

bool is_image_file(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp" || ext == ".gif" || ext == ".tga";
}

// Decoded, resized and cropped to the training images' size inside the run's border, given
// that border, normalised into dst: float32 [C, H, W].
void load_image(const TrainedRun& run, const std::string& path, float* dst) {
  const int c = static_cast<int>(run.image_shape[0]), h = static_cast<int>(run.image_shape[1]),
            w = static_cast<int>(run.image_shape[2]);
  const int border = static_cast<int>(run.config.border);
  const DecodedImage img =
      resize_center_crop(decode_image(read_file_bytes(path), c, path), h - 2 * border, w - 2 * border);
  std::vector<uint8_t> chw(static_cast<size_t>(c * h * w));
  add_border(img.chw.data(), c, h - 2 * border, w - 2 * border, border, chw.data());
  apply_transform(eval_transform(run.stats), AugmentParams{}, chw.data(), c, h, w, dst);
}

// scores: [n, classes] on the CPU -> the top k per row.
void take_top(const Tensor& scores, int k, std::vector<Prediction*>& rows) {
  const int64_t classes = scores.shape()[1];
  const float* s = scores.data<float>();
  for (size_t r = 0; r < rows.size(); ++r) {
    std::vector<int64_t> order(static_cast<size_t>(classes));
    std::iota(order.begin(), order.end(), 0);
    const float* row = s + r * classes;
    const int64_t kk = std::min<int64_t>(k, classes);
    std::partial_sort(order.begin(), order.begin() + kk, order.end(),
                      [&](int64_t a, int64_t b) { return row[a] > row[b]; });
    for (int64_t i = 0; i < kk; ++i) rows[r]->top.push_back({order[i], row[order[i]]});
  }
}

}  // namespace

std::string score_kind(const TrainedRun& run) {
  return run.config.resolved_head() == "linear" ? "probability" : "cosine";
}

std::vector<std::string> expand_image_paths(const std::vector<std::string>& paths) {
  std::vector<std::string> files;
  for (const std::string& p : paths) {
    AG_CHECK(fs::exists(p), "no such file or folder: " << p);
    if (!fs::is_directory(p)) {
      files.push_back(p);
      continue;
    }
    std::vector<std::string> found;
    for (const fs::directory_entry& e : fs::recursive_directory_iterator(p))
      if (e.is_regular_file() && is_image_file(e.path())) found.push_back(e.path().string());
    AG_CHECK(!found.empty(), "the folder " << p << " holds no .png/.jpg/.jpeg/.bmp/.gif/.tga image");
    std::sort(found.begin(), found.end());
    files.insert(files.end(), found.begin(), found.end());
  }
  return files;
}

std::vector<Prediction> predict_images(TrainedRun& run, const std::vector<std::string>& paths, int k,
                                       Device device, int64_t batch_size) {
  AG_CHECK(k >= 1, "predict: k must be >= 1, got " << k);
  AG_CHECK(batch_size >= 1, "predict: batch size must be >= 1, got " << batch_size);
  const int64_t c = run.image_shape[0], h = run.image_shape[1], w = run.image_shape[2];
  const bool probabilities = score_kind(run) == "probability";
  std::vector<Prediction> out(paths.size());
  NoGradGuard no_grad;
  run.net->eval();
  for (size_t begin = 0; begin < paths.size(); begin += static_cast<size_t>(batch_size)) {
    const size_t end = std::min(paths.size(), begin + static_cast<size_t>(batch_size));
    Tensor batch = Tensor::empty({static_cast<int64_t>(end - begin), c, h, w});
    std::vector<Prediction*> rows;
    for (size_t i = begin; i < end; ++i) {
      out[i].path = paths[i];
      try {
        load_image(run, paths[i], batch.data<float>() + rows.size() * c * h * w);
        rows.push_back(&out[i]);
      } catch (const std::exception& e) {
        out[i].error = e.what();
      }
    }
    if (rows.empty()) continue;
    const Tensor images = batch.slice(0, static_cast<int64_t>(rows.size())).to(device);
    Tensor scores = (*run.net)(images);
    if (probabilities) scores = softmax(scores, 1);
    take_top(scores.to(Device::cpu()).contiguous(), k, rows);
  }
  return out;
}

std::string format_predictions(const std::vector<Prediction>& predictions,
                               const std::vector<std::string>& class_names, const std::string& kind) {
  std::ostringstream os;
  for (const Prediction& p : predictions) {
    if (!p.error.empty()) continue;
    os << p.path << "\n";
    for (const ClassScore& s : p.top)
      os << "  " << std::left << std::setw(20) << class_names.at(static_cast<size_t>(s.label)) << " " << kind
         << " " << std::fixed << std::setprecision(4) << s.score << "\n";
  }
  return os.str();
}

}  // namespace ag::train
