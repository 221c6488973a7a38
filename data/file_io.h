// Whole-file reads for the dataset readers, with errors that name the file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ag {

bool file_exists(const std::string& path);
// The file's bytes; a missing or unreadable file is an ag::Error naming it.
std::vector<uint8_t> read_file_bytes(const std::string& path);
// Same, but a gzip file (recognised by its magic bytes, not its name) is decompressed.
std::vector<uint8_t> read_file_maybe_gzip(const std::string& path);
void write_file_bytes(const std::string& path, const std::vector<uint8_t>& bytes);
// "dir/name" without doubling the slash.
std::string join_path(const std::string& dir, const std::string& name);

}  // namespace ag
