#include "core/error.h"

namespace ag::detail {

void throw_error(const char* file, int line, const std::string& message) {
  std::string path = file;
  // Keep the path relative to the repository so messages read the same on every machine.
  for (const char* top : {"/core/", "/layers/", "/models/", "/losses/", "/data/", "/apps/", "/tests/"}) {
    auto pos = path.rfind(top);
    if (pos != std::string::npos) {
      path = path.substr(pos + 1);
      break;
    }
  }
  throw Error(path + ":" + std::to_string(line) + ": " + message);
}

}  // namespace ag::detail
