#include "data/image_codec.h"

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include <algorithm>
#include <cstdint>
#include <memory>

#include "core/error.h"

namespace ag {

namespace {

constexpr int64_t kMaxImagePixels = int64_t{1} << 26;  // 8192 x 8192

// Debian's stb (2022) writes past a Huffman table when a JPEG's DHT segment declares more
// than 256 codes (found by tests/fuzz/, input in tests/fuzz/regressions/image_folder/), so
// every DHT segment is checked before stb sees the file. Walks the markers, skipping the
// entropy-coded data after each start of scan (progressive files have several scans).
void check_jpeg_huffman_tables(const std::vector<uint8_t>& b, const std::string& path) {
  // stb, like the JPEG standard, skips 0xFF fill bytes before a marker, the first one too.
  size_t start = 1;
  while (start < b.size() && b[start] == 0xFF) ++start;
  if (b.size() < 2 || b[0] != 0xFF || start >= b.size() || b[start] != 0xD8) return;  // not a JPEG
  size_t pos = start + 1;
  while (pos + 4 <= b.size()) {
    if (b[pos] != 0xFF) {  // entropy-coded data: find the next marker (not a stuffed 0, not RSTn)
      ++pos;
      continue;
    }
    const uint8_t marker = b[pos + 1];
    if (marker == 0xFF || marker == 0x00 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {
      pos += marker == 0xFF ? 1 : 2;
      continue;
    }
    if (marker == 0xD9) return;  // end of image
    const size_t length = static_cast<size_t>(b[pos + 2]) << 8 | b[pos + 3];
    const size_t end = pos + 2 + length;  // may lie past the end of a truncated file
    if (marker == 0xC4) {
      // As stb reads it: the declared length drives the loop, bytes past the end read as 0.
      auto byte = [&](size_t i) -> size_t { return i < b.size() ? b[i] : 0; };
      for (size_t t = pos + 4; t < end;) {
        size_t codes = 0;
        for (size_t i = 1; i <= 16; ++i) codes += byte(t + i);
        AG_CHECK(codes <= 256, path << ": cannot decode image (corrupt JPEG: a Huffman table declares "
                                    << codes << " codes, at most 256 exist)");
        t += 17 + codes;
      }
    }
    pos = std::max(end, pos + 2);
  }
}

// stb grows its buffer for a PNG's image data to whatever length an IDAT chunk declares,
// before reading the chunk, so a corrupt 300-byte file can ask for 2 GiB (found by
// tests/fuzz/). Every chunk must fit in the file; a truncated last chunk is left to stb.
void check_png_chunk_lengths(const std::vector<uint8_t>& b, const std::string& path) {
  static const uint8_t signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (b.size() < 8 || !std::equal(signature, signature + 8, b.begin())) return;  // not a PNG
  for (size_t pos = 8; pos + 8 <= b.size();) {
    const size_t length = static_cast<size_t>(b[pos]) << 24 | static_cast<size_t>(b[pos + 1]) << 16 |
                          static_cast<size_t>(b[pos + 2]) << 8 | b[pos + 3];
    AG_CHECK(length <= b.size() - pos - 8, path << ": cannot decode image (corrupt PNG: a chunk declares "
                                                << length << " bytes, the file has " << b.size() - pos - 8
                                                << " left)");
    pos += 12 + length;  // length, type, data, CRC
  }
}

}  // namespace

DecodedImage decode_image(const std::vector<uint8_t>& bytes, int channels, const std::string& path) {
  AG_CHECK(channels == 0 || channels == 1 || channels == 3, "decode_image: channels must be 0, 1 or 3");
  AG_CHECK(bytes.size() < (size_t{1} << 31),
           path << ": " << bytes.size() << " bytes, too large an image file");
  const int size = static_cast<int>(bytes.size());
  check_jpeg_huffman_tables(bytes, path);  // before any stb call: stbi_info parses them too
  check_png_chunk_lengths(bytes, path);
  int w = 0, h = 0, file_channels = 0;
  AG_CHECK(stbi_info_from_memory(bytes.data(), size, &w, &h, &file_channels),
           path << ": cannot decode image (" << stbi_failure_reason() << ")");
  AG_CHECK(static_cast<int64_t>(w) * h <= kMaxImagePixels, path << ": the image is " << w << " x " << h
                                                                << " pixels, more than the "
                                                                << kMaxImagePixels << " this reader decodes");
  const std::unique_ptr<uint8_t, void (*)(void*)> decoded(
      stbi_load_from_memory(bytes.data(), size, &w, &h, &file_channels, channels), stbi_image_free);
  const uint8_t* hwc = decoded.get();
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
