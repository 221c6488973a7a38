// The apps' command lines, parsed by CLI11: `--name value` and `--name=value`, typed flags
// with defaults and help texts, `--help`/`-h`. Booleans are switches: `--augment` sets
// true, `--no-augment` false, `--augment=false` either way (a bare `--augment false` would
// be ambiguous, so a bool never takes the next argument). Every mistake on the command
// line is a UsageError whose message names the flag; apps exit with status 2 on it
// (apps/lib/app_main.h).
//
//   Flags flags("train", "Trains a CIFAR classifier.");
//   flags.add_int("epochs", 10, "passes over the training set");
//   flags.add_choice("loss", "arcface", {"ce", "arcface"}, "training loss");
//   flags.parse(argc, argv);                  // throws UsageError naming a bad flag
//   if (flags.help_requested()) { std::cout << flags.usage(); return 0; }
//   int64_t epochs = flags.get_int("epochs");
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace ag::train {

// A bad command line; the message names the flag and says what is wrong (no file:line,
// apps print it as is, followed by a hint to use --help).
class UsageError : public Error {
 public:
  using Error::Error;
};

class Flags {
 public:
  Flags(std::string program, std::string summary);
  Flags(Flags&&) noexcept;
  Flags& operator=(Flags&&) noexcept;
  ~Flags();

  // Registration (a name twice, or an empty name, is a programming error: ag::Error).
  Flags& add_string(const std::string& name, const std::string& def, const std::string& help);
  Flags& add_int(const std::string& name, int64_t def, const std::string& help);
  Flags& add_double(const std::string& name, double def, const std::string& help);
  Flags& add_bool(const std::string& name, bool def, const std::string& help);
  Flags& add_choice(const std::string& name, const std::string& def, const std::vector<std::string>& choices,
                    const std::string& help);

  // Arguments that are not flags (e.g. predict's image files): an error unless allowed;
  // name and help appear in usage().
  Flags& allow_positional(const std::string& name, const std::string& help);
  const std::vector<std::string>& positional() const { return positional_; }

  // Parses argv[1..argc); later occurrences of a flag win. Throws UsageError for an
  // unknown flag, a missing or malformed value, a value outside a choice list, or a
  // positional argument where none is allowed.
  void parse(int argc, const char* const* argv);
  void parse(const std::vector<std::string>& args);
  bool help_requested() const { return help_; }
  // Every flag with its value type, help text and default.
  std::string usage() const;

  std::string get_string(const std::string& name) const;  // string and choice flags
  int64_t get_int(const std::string& name) const;
  double get_double(const std::string& name) const;
  bool get_bool(const std::string& name) const;
  bool was_set(const std::string& name) const;  // given on the command line
  // Every flag with its typed value, for config.json.
  nlohmann::json to_json() const;
  // A UsageError for a value that parsed but is not acceptable ("--lr: must be > 0").
  [[noreturn]] void fail(const std::string& name, const std::string& message) const;

 private:
  enum class Kind { string, integer, real, boolean, choice };
  // One flag's parsed value; CLI11 writes into it, so it lives at a fixed address
  // (a node of flags_) for as long as app_.
  struct Flag {
    Kind kind;
    std::string text;  // string and choice flags
    int64_t integer = 0;
    double real = 0;
    bool boolean = false;
    CLI::Option* option = nullptr;
  };
  Flag& add(const std::string& name, Kind kind);
  const Flag& lookup(const std::string& name, Kind kind) const;

  std::unique_ptr<CLI::App> app_;
  std::map<std::string, Flag> flags_;
  std::vector<std::string> order_;  // registration order, for to_json()
  bool help_ = false;
  std::string positional_name_;  // "": none allowed
  std::vector<std::string> positional_;
};

}  // namespace ag::train
