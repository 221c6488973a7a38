// Errors: every failed check in arcgrad throws ag::Error with the file:line of the check
// and a message that names the offending shapes, dtypes or values. The library never
// calls exit(); apps catch at main and print one clear line.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace ag {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
[[noreturn]] void throw_error(const char* file, int line, const std::string& message);
}  // namespace detail

}  // namespace ag

// AG_CHECK(cond, a << b << c): throws ag::Error("file:line: a b c") when cond is false.
// The message is only built on failure.
#define AG_CHECK(cond, msg)                                                  \
  do {                                                                       \
    if (!(cond)) {                                                           \
      std::ostringstream ag_check_stream_;                                   \
      ag_check_stream_ << msg;                                               \
      ::ag::detail::throw_error(__FILE__, __LINE__, ag_check_stream_.str()); \
    }                                                                        \
  } while (0)

#define AG_FAIL(msg) AG_CHECK(false, msg)
