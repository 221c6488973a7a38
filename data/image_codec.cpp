#include "data/image_codec.h"

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include "core/error.h"

namespace ag {

DecodedImage decode_image(const std::vector<uint8_t>& bytes, int channels, const std::string& path) {
  AG_CHECK(channels == 0 || channels == 1 || channels == 3, "decode_image: channels must be 0, 1 or 3");
  int w = 0, h = 0, file_channels = 0;
  uint8_t* hwc =
      stbi_load_from_memory(bytes.data(), static_cast<int>(bytes.size()), &w, &h, &file_channels, channels);
  AG_CHECK(hwc, path << ": cannot decode image (" << stbi_failure_reason() << ")");
  DecodedImage img;
  img.channels = channels ? channels : file_channels;
  img.height = h;
  img.width = w;
  img.chw.resize(static_cast<size_t>(img.channels) * h * w);
  // stb returns interleaved HWC; datasets keep planar CHW like the CIFAR records.
  for (int c = 0; c < img.channels; ++c) {
    uint8_t* plane = img.chw.data() + static_cast<size_t>(c) * h * w;
    for (int p = 0; p < h * w; ++p) plane[p] = hwc[p * img.channels + c];
  }
  stbi_image_free(hwc);
  return img;
}

namespace {

void append_bytes(void* context, void* data, int size) {
  auto* out = static_cast<std::vector<uint8_t>*>(context);
  const auto* bytes = static_cast<const uint8_t*>(data);
  out->insert(out->end(), bytes, bytes + size);
}

}  // namespace

std::vector<uint8_t> encode_image(const uint8_t* chw, int channels, int height, int width, ImageFormat format,
                                  int jpeg_quality) {
  std::vector<uint8_t> hwc(static_cast<size_t>(channels) * height * width);
  for (int c = 0; c < channels; ++c) {
    for (int p = 0; p < height * width; ++p) hwc[p * channels + c] = chw[c * height * width + p];
  }
  std::vector<uint8_t> out;
  int ok =
      format == ImageFormat::png
          ? stbi_write_png_to_func(append_bytes, &out, width, height, channels, hwc.data(), width * channels)
          : stbi_write_jpg_to_func(append_bytes, &out, width, height, channels, hwc.data(), jpeg_quality);
  AG_CHECK(ok,
           "encode_image: stb could not encode a " << channels << "x" << height << "x" << width << " image");
  return out;
}

}  // namespace ag
