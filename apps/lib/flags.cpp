// Command-line flags; see flags.h.
#include "apps/lib/flags.h"

#include <cmath>
#include <cstdlib>
#include <sstream>

namespace ag::train {

namespace {
const char* kind_name(int kind) {
  static const char* names[] = {"TEXT", "INT", "NUMBER", "", "CHOICE"};
  return names[kind];
}

bool parse_int(const std::string& s, int64_t& out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (*end != '\0' || errno == ERANGE) return false;
  out = v;
  return true;
}

bool parse_real(const std::string& s, double& out) {
  if (s.empty()) return false;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (*end != '\0' || !std::isfinite(v)) return false;
  out = v;
  return true;
}

bool parse_bool(const std::string& s, bool& out) {
  if (s == "true" || s == "1" || s == "yes" || s == "on") return out = true, true;
  if (s == "false" || s == "0" || s == "no" || s == "off") return out = false, true;
  return false;
}

std::string join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += sep;
    out += items[i];
  }
  return out;
}
}  // namespace

Flags::Flags(std::string program, std::string summary)
    : program_(std::move(program)), summary_(std::move(summary)) {}

Flags& Flags::add(const std::string& name, Kind kind, std::string def, const std::string& help,
                  std::vector<std::string> choices) {
  AG_CHECK(!name.empty() && name[0] != '-' && name.find('=') == std::string::npos,
           "Flags: invalid flag name '" << name << "'");
  AG_CHECK(!flags_.count(name) && name != "help", "Flags: --" << name << " is registered twice");
  flags_[name] = Flag{kind, help, std::move(def), std::move(choices), false};
  order_.push_back(name);
  return *this;
}

Flags& Flags::add_string(const std::string& name, const std::string& def, const std::string& help) {
  return add(name, Kind::string, def, help);
}
Flags& Flags::add_int(const std::string& name, int64_t def, const std::string& help) {
  return add(name, Kind::integer, std::to_string(def), help);
}
Flags& Flags::add_double(const std::string& name, double def, const std::string& help) {
  std::ostringstream os;
  os << def;
  return add(name, Kind::real, os.str(), help);
}
Flags& Flags::add_bool(const std::string& name, bool def, const std::string& help) {
  return add(name, Kind::boolean, def ? "true" : "false", help);
}
Flags& Flags::add_choice(const std::string& name, const std::string& def,
                         const std::vector<std::string>& choices, const std::string& help) {
  bool known = false;
  for (const std::string& c : choices) known |= c == def;
  AG_CHECK(known, "Flags: the default '" << def << "' of --" << name << " is not one of its choices");
  return add(name, Kind::choice, def, help, choices);
}

void Flags::fail(const std::string& name, const std::string& message) const {
  throw UsageError("--" + name + ": " + message + " (see --help)");
}

void Flags::assign(const std::string& name, Flag& flag, const std::string& value) {
  int64_t i = 0;
  double d = 0;
  bool b = false;
  switch (flag.kind) {
    case Kind::integer:
      if (!parse_int(value, i)) fail(name, "'" + value + "' is not an integer");
      break;
    case Kind::real:
      if (!parse_real(value, d)) fail(name, "'" + value + "' is not a number");
      break;
    case Kind::boolean:
      if (!parse_bool(value, b)) fail(name, "'" + value + "' is not true or false");
      break;
    case Kind::choice: {
      bool ok = false;
      for (const std::string& c : flag.choices) ok |= c == value;
      if (!ok) fail(name, "'" + value + "' is not one of " + join(flag.choices, ", "));
      break;
    }
    case Kind::string:
      break;
  }
  flag.text = value;
  flag.set = true;
}

void Flags::parse(int argc, const char* const* argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  parse(args);
}

void Flags::parse(const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      help_ = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0 && !positional_name_.empty()) {
      positional_.push_back(arg);
      continue;
    }
    if (arg.rfind("--", 0) != 0 || arg.size() == 2)
      throw UsageError("unexpected argument '" + arg + "': flags are written --name value (see --help)");
    const size_t eq = arg.find('=');
    std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    auto it = flags_.find(name);
    if (it == flags_.end() && eq == std::string::npos && name.rfind("no-", 0) == 0) {
      auto neg = flags_.find(name.substr(3));
      if (neg != flags_.end() && neg->second.kind == Kind::boolean) {
        assign(neg->first, neg->second, "false");
        continue;
      }
    }
    if (it == flags_.end()) throw UsageError("unknown flag --" + name + " (see --help)");
    Flag& flag = it->second;
    if (eq != std::string::npos) {
      assign(name, flag, arg.substr(eq + 1));
    } else if (flag.kind == Kind::boolean) {
      assign(name, flag, "true");
    } else {
      if (i + 1 >= args.size() || args[i + 1].rfind("--", 0) == 0) fail(name, "needs a value");
      assign(name, flag, args[++i]);
    }
  }
}

Flags& Flags::allow_positional(const std::string& name, const std::string& help) {
  positional_name_ = name;
  positional_help_ = help;
  return *this;
}

std::string Flags::usage() const {
  std::ostringstream os;
  os << "usage: " << program_ << " [flags]" << (positional_name_.empty() ? "" : " " + positional_name_ + "...")
     << "\n" << summary_ << "\n";
  if (!positional_name_.empty()) os << "\n" << positional_name_ << ": " << positional_help_ << "\n";
  os << "\nflags:\n";
  for (const std::string& name : order_) {
    const Flag& f = flags_.at(name);
    std::string left = "  --" + name;
    if (f.kind == Kind::choice)
      left += ' ' + join(f.choices, "|");
    else if (f.kind != Kind::boolean)
      left += std::string(" ") + kind_name(static_cast<int>(f.kind));
    os << left;
    os << std::string(left.size() < 30 ? 30 - left.size() : 1, ' ') << f.help;
    os << " (default: " << (f.text.empty() ? "\"\"" : f.text) << ")\n";
  }
  os << "  --help                      this text\n";
  return os.str();
}

const Flags::Flag& Flags::lookup(const std::string& name, Kind kind) const {
  auto it = flags_.find(name);
  AG_CHECK(it != flags_.end(), "Flags: no flag --" << name << " was registered");
  const bool ok = it->second.kind == kind || (kind == Kind::string && it->second.kind == Kind::choice);
  AG_CHECK(ok, "Flags: --" << name << " is not of the requested type");
  return it->second;
}

std::string Flags::get_string(const std::string& name) const { return lookup(name, Kind::string).text; }
int64_t Flags::get_int(const std::string& name) const {
  int64_t v = 0;
  parse_int(lookup(name, Kind::integer).text, v);
  return v;
}
double Flags::get_double(const std::string& name) const {
  double v = 0;
  parse_real(lookup(name, Kind::real).text, v);
  return v;
}
bool Flags::get_bool(const std::string& name) const {
  bool v = false;
  parse_bool(lookup(name, Kind::boolean).text, v);
  return v;
}
bool Flags::was_set(const std::string& name) const {
  auto it = flags_.find(name);
  AG_CHECK(it != flags_.end(), "Flags: no flag --" << name << " was registered");
  return it->second.set;
}

nlohmann::json Flags::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  for (const std::string& name : order_) {
    switch (flags_.at(name).kind) {
      case Kind::integer:
        j[name] = get_int(name);
        break;
      case Kind::real:
        j[name] = get_double(name);
        break;
      case Kind::boolean:
        j[name] = get_bool(name);
        break;
      default:
        j[name] = get_string(name);
        break;
    }
  }
  return j;
}

}  // namespace ag::train
