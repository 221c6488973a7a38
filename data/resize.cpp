// Antialiased resizing and centre cropping; see resize.h.
#include "data/resize.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace ag {

namespace {

// For each output index, the input indices it reads and their weights (summing to 1).
struct Taps {
  std::vector<int> first;  // [out] first input index
  std::vector<std::vector<float>> weights;
};

Taps make_taps(int in, int out) {
  const double scale = static_cast<double>(in) / out;
  Taps t;
  for (int i = 0; i < out; ++i) {
    std::vector<float> w;
    int lo = 0;
    if (scale > 1) {
      // Shrinking: the area average of the input pixels under output pixel i's footprint
      // [i * scale, (i + 1) * scale): every input pixel counts, so nothing aliases.
      const double a = i * scale, b = (i + 1) * scale;
      lo = static_cast<int>(std::floor(a));
      const int hi = std::min(in, static_cast<int>(std::ceil(b)));
      for (int j = lo; j < hi; ++j)
        w.push_back(static_cast<float>((std::min<double>(b, j + 1) - std::max<double>(a, j)) / scale));
    } else {
      // Enlarging: bilinear between the two nearest input pixel centres (clamped at edges).
      const double centre = std::clamp((i + 0.5) * scale - 0.5, 0.0, in - 1.0);
      lo = std::min(static_cast<int>(centre), in - 1);
      const double frac = centre - lo;
      w.push_back(static_cast<float>(1 - frac));
      if (lo + 1 < in) w.push_back(static_cast<float>(frac));
    }
    t.first.push_back(lo);
    t.weights.push_back(std::move(w));
  }
  return t;
}

}  // namespace

DecodedImage resize_image(const DecodedImage& img, int height, int width) {
  AG_CHECK(height > 0 && width > 0, "resize: target size " << height << "x" << width << " must be positive");
  AG_CHECK(img.height > 0 && img.width > 0 && img.channels > 0, "resize: empty image");
  if (img.height == height && img.width == width) return img;
  const Taps rows = make_taps(img.height, height), cols = make_taps(img.width, width);
  DecodedImage out;
  out.channels = img.channels;
  out.height = height;
  out.width = width;
  out.chw.resize(static_cast<size_t>(img.channels) * height * width);
  std::vector<float> horizontal(static_cast<size_t>(img.height) * width);  // one channel, widths resized
  for (int c = 0; c < img.channels; ++c) {
    const uint8_t* src = img.chw.data() + static_cast<size_t>(c) * img.height * img.width;
    for (int y = 0; y < img.height; ++y)
      for (int x = 0; x < width; ++x) {
        float acc = 0;
        const std::vector<float>& w = cols.weights[x];
        for (size_t k = 0; k < w.size(); ++k) acc += w[k] * src[y * img.width + cols.first[x] + k];
        horizontal[static_cast<size_t>(y) * width + x] = acc;
      }
    uint8_t* dst = out.chw.data() + static_cast<size_t>(c) * height * width;
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < width; ++x) {
        float acc = 0;
        const std::vector<float>& w = rows.weights[y];
        for (size_t k = 0; k < w.size(); ++k) acc += w[k] * horizontal[(rows.first[y] + k) * width + x];
        dst[y * width + x] = static_cast<uint8_t>(std::clamp(std::lround(acc), 0L, 255L));
      }
  }
  return out;
}

DecodedImage resize_center_crop(const DecodedImage& img, int height, int width) {
  AG_CHECK(img.height > 0 && img.width > 0, "resize: empty image");
  const double f = std::max(static_cast<double>(height) / img.height, static_cast<double>(width) / img.width);
  const int h = std::max(height, static_cast<int>(std::lround(img.height * f)));
  const int w = std::max(width, static_cast<int>(std::lround(img.width * f)));
  const DecodedImage scaled = resize_image(img, h, w);
  if (h == height && w == width) return scaled;
  DecodedImage out;
  out.channels = img.channels;
  out.height = height;
  out.width = width;
  out.chw.resize(static_cast<size_t>(img.channels) * height * width);
  const int y0 = (h - height) / 2, x0 = (w - width) / 2;
  for (int c = 0; c < img.channels; ++c)
    for (int y = 0; y < height; ++y)
      std::copy_n(scaled.chw.data() + (static_cast<size_t>(c) * h + y0 + y) * w + x0, width,
                  out.chw.data() + (static_cast<size_t>(c) * height + y) * width);
  return out;
}

void add_border(const uint8_t* src, int64_t channels, int64_t height, int64_t width, int64_t border,
                uint8_t* dst) {
  const int64_t h = height + 2 * border, w = width + 2 * border;
  std::fill(dst, dst + channels * h * w, uint8_t{0});
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t y = 0; y < height; ++y)
      std::copy_n(src + (c * height + y) * width, width, dst + (c * h + y + border) * w + border);
}

}  // namespace ag
