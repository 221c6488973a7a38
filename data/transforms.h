// Per-example transforms from uint8 CHW pixels to normalised float32 CHW, fused into one pass
// over the output so that augmentation costs about as much as the copy itself. The order is
// the usual CIFAR recipe:
//   1. random crop: pad the image with `pad` zero (black) pixels on each side, cut a window
//      of the original size at a random offset in [0, 2*pad] x [0, 2*pad];
//   2. horizontal flip with probability flip_prob;
//   3. normalise per channel: (pixel/255 - mean[c]) / std[c];
//   4. Cutout (DeVries & Taylor 2017): a cutout x cutout square centred at a uniformly random
//      pixel (clipped at the borders) is set to 0, i.e. to the mean after normalisation.
// Training and evaluation use separate Transform values: eval_transform() has no random
// step, so evaluation never depends on a seed.
#pragma once

#include <cstdint>
#include <vector>

#include "core/random.h"
#include "data/dataset.h"

namespace ag {

struct ChannelStats {
  std::vector<float> mean;  // per channel, in [0,1] pixel units
  std::vector<float> std;
};

// Population mean and std of every channel over the whole dataset (use the training set).
ChannelStats compute_channel_stats(const Dataset& data);
// The published training-set statistics, to skip the pass over the data.
ChannelStats cifar10_stats();
ChannelStats cifar100_stats();

struct Transform {
  ChannelStats stats;   // empty mean/std: no normalisation (pixel/255 only)
  int pad = 0;          // random crop padding; 0 disables the crop
  float flip_prob = 0;  // probability of a horizontal flip
  int cutout = 0;       // Cutout square side; 0 disables it

  bool is_random() const { return pad > 0 || flip_prob > 0 || cutout > 0; }
};

// Crop with padding 4, flip with probability 1/2, optional Cutout: the standard CIFAR recipe.
Transform train_transform(const ChannelStats& stats, int pad = 4, int cutout = 0);
Transform eval_transform(const ChannelStats& stats);
// eval_transform with every image mirrored (flip_prob 1, nothing else random): the second view
// of flip test-time augmentation.
Transform mirror_transform(const ChannelStats& stats);

// The random choices for one example, drawn before the pixel pass so tests can fix them.
struct AugmentParams {
  int crop_y = 0, crop_x = 0;  // window offset in the padded image, in [0, 2*pad]
  bool flip = false;
  int cutout_y = -1, cutout_x = -1;  // square centre; -1: no cutout
};
AugmentParams draw_augment(const Transform& t, int64_t height, int64_t width, Generator& gen);

// src: uint8 [C,H,W]; dst: float32 [C,H,W].
void apply_transform(const Transform& t, const AugmentParams& p, const uint8_t* src, int64_t channels,
                     int64_t height, int64_t width, float* dst);

}  // namespace ag
