// PNG, JPEG and BMP decoding and PNG/JPEG encoding through stb (other formats are not
// compiled in: see data/stb_impl.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ag {

struct DecodedImage {
  int channels = 0;
  int height = 0;
  int width = 0;
  std::vector<uint8_t> chw;  // uint8 [channels, height, width]
};

enum class ImageFormat { png, jpg };

// channels: 0 keeps the file's own, 1 converts to grey, 3 to RGB. An undecodable image, or
// one of more than 2^26 pixels, is an ag::Error naming path and the reason.
DecodedImage decode_image(const std::vector<uint8_t>& bytes, int channels, const std::string& path);
// chw: uint8 [channels, height, width]; returns the encoded file.
std::vector<uint8_t> encode_image(const uint8_t* chw, int channels, int height, int width, ImageFormat format,
                                  int jpeg_quality = 95);

}  // namespace ag
