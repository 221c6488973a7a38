#include "data/file_io.h"

#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace ag {

bool file_exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec);
}

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  AG_CHECK(file_exists(path), "missing file " << path);
  FILE* f = std::fopen(path.c_str(), "rb");
  AG_CHECK(f, "cannot open " << path << ": " << std::strerror(errno));
  std::vector<uint8_t> bytes(static_cast<size_t>(std::filesystem::file_size(path)));
  size_t got = bytes.empty() ? 0 : std::fread(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
  AG_CHECK(got == bytes.size(),
           "short read of " << path << ": " << got << " of " << bytes.size() << " bytes");
  return bytes;
}

namespace {

std::vector<uint8_t> gunzip(const std::vector<uint8_t>& packed, const std::string& path) {
  z_stream zs{};
  // 16 + MAX_WBITS: expect a gzip header (not a raw zlib stream).
  AG_CHECK(inflateInit2(&zs, 16 + MAX_WBITS) == Z_OK, "zlib init failed for " << path);
  std::vector<uint8_t> out(packed.size() * 4 + 1024);
  zs.next_in = const_cast<Bytef*>(packed.data());
  zs.avail_in = static_cast<uInt>(packed.size());
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    if (zs.total_out == out.size()) out.resize(out.size() * 2);
    zs.next_out = out.data() + zs.total_out;
    zs.avail_out = static_cast<uInt>(out.size() - zs.total_out);
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) break;
    if (rc == Z_BUF_ERROR && zs.avail_in == 0) break;  // truncated input
  }
  size_t total = zs.total_out;
  inflateEnd(&zs);
  AG_CHECK(rc == Z_STREAM_END, path << ": corrupt or truncated gzip data (zlib code " << rc << ", after "
                                    << total << " output bytes)");
  out.resize(total);
  return out;
}

}  // namespace

std::vector<uint8_t> read_file_maybe_gzip(const std::string& path) {
  std::vector<uint8_t> bytes = read_file_bytes(path);
  bool gzip = bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;
  return gzip ? gunzip(bytes, path) : bytes;
}

void write_file_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  AG_CHECK(f, "cannot create " << path << ": " << std::strerror(errno));
  size_t put = bytes.empty() ? 0 : std::fwrite(bytes.data(), 1, bytes.size(), f);
  bool closed = std::fclose(f) == 0;
  AG_CHECK(put == bytes.size() && closed, "write to " << path << " failed: " << std::strerror(errno));
}

std::string join_path(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  return dir.back() == '/' ? dir + name : dir + "/" + name;
}

}  // namespace ag
