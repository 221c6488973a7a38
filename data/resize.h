// Resizing decoded images to a model's input size (the predict app): scale so the image
// covers height x width, keeping its aspect ratio, then cut the centre out.
#pragma once

#include "data/image_codec.h"

namespace ag {

// img: uint8 [C, h, w] -> uint8 [C, height, width], separably: area averaging where it
// shrinks (a large photo is averaged rather than sampled, so nothing aliases; an integer
// factor averages whole blocks), bilinear where it enlarges. An image already of that size
// is returned unchanged.
DecodedImage resize_image(const DecodedImage& img, int height, int width);

// The smallest resize that covers height x width, then the centred height x width window.
DecodedImage resize_center_crop(const DecodedImage& img, int height, int width);

// src uint8 [C, H, W] -> dst uint8 [C, H + 2 border, W + 2 border]: the image inside a zero
// (black) border of `border` pixels on each side.
void add_border(const uint8_t* src, int64_t channels, int64_t height, int64_t width, int64_t border,
                uint8_t* dst);

}  // namespace ag
