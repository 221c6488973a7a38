#include "data/transforms.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace ag {

ChannelStats compute_channel_stats(const Dataset& data) {
  AG_CHECK(data.size() > 0, "compute_channel_stats: empty dataset " << data.source());
  const int64_t plane = data.height() * data.width();
  ChannelStats stats;
  for (int64_t c = 0; c < data.channels(); ++c) {
    // Integer sums are exact: 255^2 * 60,000 * 1024 fits easily in 64 bits.
    uint64_t sum = 0, sum_sq = 0;
    for (int64_t i = 0; i < data.size(); ++i) {
      const uint8_t* p = data.image(i) + c * plane;
      for (int64_t k = 0; k < plane; ++k) {
        sum += p[k];
        sum_sq += uint64_t(p[k]) * p[k];
      }
    }
    double n = static_cast<double>(data.size()) * plane;
    double mean = sum / n;
    double var = std::max(0.0, sum_sq / n - mean * mean);
    stats.mean.push_back(static_cast<float>(mean / 255.0));
    stats.std.push_back(static_cast<float>(std::sqrt(var) / 255.0));
  }
  return stats;
}

ChannelStats cifar10_stats() { return {{0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f}}; }
ChannelStats cifar100_stats() { return {{0.5071f, 0.4865f, 0.4409f}, {0.2673f, 0.2564f, 0.2762f}}; }

Transform train_transform(const ChannelStats& stats, int pad, int cutout) {
  Transform t;
  t.stats = stats;
  t.pad = pad;
  t.flip_prob = 0.5f;
  t.cutout = cutout;
  return t;
}

Transform eval_transform(const ChannelStats& stats) {
  Transform t;
  t.stats = stats;
  return t;
}

Transform mirror_transform(const ChannelStats& stats) {
  Transform t = eval_transform(stats);
  t.flip_prob = 1;  // uniform() < 1 always: every image flipped, whatever the seed
  return t;
}

AugmentParams draw_augment(const Transform& t, int64_t height, int64_t width, Generator& gen) {
  // Always draw the same number of values in the same order, so a sample's stream does not
  // depend on which steps are on.
  AugmentParams p;
  uint64_t span = static_cast<uint64_t>(2 * t.pad + 1);
  p.crop_y = static_cast<int>(gen.below(span));
  p.crop_x = static_cast<int>(gen.below(span));
  p.flip = gen.uniform() < t.flip_prob;
  int cy = static_cast<int>(gen.below(static_cast<uint64_t>(height)));
  int cx = static_cast<int>(gen.below(static_cast<uint64_t>(width)));
  if (t.pad == 0) p.crop_y = p.crop_x = 0;
  if (t.cutout > 0) {
    p.cutout_y = cy;
    p.cutout_x = cx;
  }
  return p;
}

namespace {

void check_stats(const Transform& t, int64_t channels) {
  bool none = t.stats.mean.empty() && t.stats.std.empty();
  AG_CHECK(none || (static_cast<int64_t>(t.stats.mean.size()) == channels &&
                    static_cast<int64_t>(t.stats.std.size()) == channels),
           "transform: normalisation has " << t.stats.mean.size() << " means and " << t.stats.std.size()
                                           << " stds for " << channels << " channels");
  for (float s : t.stats.std) AG_CHECK(s > 0, "transform: std must be positive, got " << s);
}

// Zeroes the Cutout square (clipped to the image) in every channel.
void apply_cutout(int cutout, int cy, int cx, int64_t channels, int64_t height, int64_t width, float* dst) {
  int64_t y0 = std::max<int64_t>(0, cy - cutout / 2),
          y1 = std::min<int64_t>(height, cy - cutout / 2 + cutout);
  int64_t x0 = std::max<int64_t>(0, cx - cutout / 2), x1 = std::min<int64_t>(width, cx - cutout / 2 + cutout);
  for (int64_t c = 0; c < channels; ++c) {
    for (int64_t y = y0; y < y1; ++y)
      std::fill(dst + (c * height + y) * width + x0, dst + (c * height + y) * width + x1, 0.0f);
  }
}

}  // namespace

void apply_transform(const Transform& t, const AugmentParams& p, const uint8_t* src, int64_t channels,
                     int64_t height, int64_t width, float* dst) {
  check_stats(t, channels);
  const bool normalise = !t.stats.mean.empty();
  for (int64_t c = 0; c < channels; ++c) {
    // out = pixel * scale + bias folds /255, -mean and /std into one multiply-add.
    float scale = normalise ? 1.0f / (255.0f * t.stats.std[c]) : 1.0f / 255.0f;
    float bias = normalise ? -t.stats.mean[c] / t.stats.std[c] : 0.0f;
    const uint8_t* plane = src + c * height * width;
    for (int64_t y = 0; y < height; ++y) {
      float* row = dst + (c * height + y) * width;
      int64_t sy = y + p.crop_y - t.pad;
      if (sy < 0 || sy >= height) {
        std::fill(row, row + width, bias);  // a padded (black) row
        continue;
      }
      const uint8_t* srow = plane + sy * width;
      for (int64_t x = 0; x < width; ++x) {
        int64_t cx = p.flip ? width - 1 - x : x;  // flip after the crop
        int64_t sx = cx + p.crop_x - t.pad;
        row[x] = (sx >= 0 && sx < width) ? srow[sx] * scale + bias : bias;
      }
    }
  }
  if (p.cutout_y >= 0) apply_cutout(t.cutout, p.cutout_y, p.cutout_x, channels, height, width, dst);
}

}  // namespace ag
