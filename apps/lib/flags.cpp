// Command-line flags on CLI11; see flags.h. CLI11 does the scanning (both value forms,
// switches and their --no- forms, later occurrences winning, --help); the validators here
// check each value before CLI11 converts it, so that every message names the flag and the
// value in the apps' words.
#include "apps/lib/flags.h"

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <sstream>

namespace ag::train {

namespace {

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

bool is_bool_text(const std::string& s) {
  for (const char* t : {"true", "false", "1", "0", "yes", "no", "on", "off"})
    if (s == t) return true;
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

// What a value must look like; "" when it does. CLI11 reports a complaint as
// "--name: complaint".
using Complaint = std::function<std::string(std::string&)>;

Complaint needs_a_value(Complaint rest) {
  // CLI11 takes the next argument as the value even when it is a flag: `--epochs --lr 1`.
  return [rest = std::move(rest)](std::string& v) -> std::string {
    if (v.rfind("--", 0) == 0) return "needs a value";
    return rest(v);
  };
}

Complaint any_text() {
  return [](std::string&) { return std::string(); };
}
// Also rewrites the value in plain decimal: CLI11 would read "010" as octal.
Complaint integer() {
  return [](std::string& v) {
    int64_t i = 0;
    if (!parse_int(v, i)) return "'" + v + "' is not an integer";
    v = std::to_string(i);
    return std::string();
  };
}
Complaint number() {
  return [](std::string& v) {
    double d = 0;
    return parse_real(v, d) ? std::string() : "'" + v + "' is not a number";
  };
}
Complaint one_of(std::vector<std::string> choices) {
  return [choices = std::move(choices)](std::string& v) {
    for (const std::string& c : choices)
      if (v == c) return std::string();
    return "'" + v + "' is not one of " + join(choices, ", ");
  };
}
Complaint true_or_false() {
  return [](std::string& v) { return is_bool_text(v) ? std::string() : "'" + v + "' is not true or false"; };
}

// The --help layout: "usage:", the summary, then one line per flag with its value type,
// help text and default.
class UsageFormatter : public CLI::Formatter {
 public:
  UsageFormatter() { column_width(30); }

  std::string make_help(const CLI::App* app, std::string name, CLI::AppFormatMode mode) const override {
    std::string usage = "usage: " + name + " [flags]", positional;
    for (const CLI::Option* p : app->get_options([](const CLI::Option* o) { return o->get_positional(); })) {
      usage += " " + p->get_name(true) + "...";
      positional += "\n" + p->get_name(true) + ": " + p->get_description() + "\n";
    }
    return usage + "\n" + app->get_description() + "\n" + positional + make_groups(app, mode);
  }

  std::string make_option_name(const CLI::Option* opt, bool) const override {
    std::vector<std::string> names;
    for (const std::string& s : opt->get_snames()) names.push_back("-" + s);
    for (const std::string& l : opt->get_lnames()) names.push_back("--" + l);
    return join(names, ", ");
  }

  std::string make_option_opts(const CLI::Option* opt) const override {
    const std::string type = opt->get_type_name();  // "" for a switch
    return opt->get_type_size() == 0 || type.empty() ? "" : " " + type;
  }

  std::string make_option_desc(const CLI::Option* opt) const override {
    if (opt->get_lnames() == std::vector<std::string>{"help"}) return "this text";
    const std::string def = opt->get_default_str();
    return opt->get_description() + " (default: " + (def.empty() ? "\"\"" : def) + ")";
  }
};

// "--epochs: 1 required INT missing" -> "epochs".
std::string flag_named_in(const std::string& cli11_message) {
  if (cli11_message.rfind("--", 0) != 0) return "";
  return cli11_message.substr(2, cli11_message.find(':') - 2);
}

}  // namespace

Flags::Flags(std::string program, std::string summary)
    : app_(std::make_unique<CLI::App>(std::move(summary), std::move(program))) {
  app_->formatter(std::make_shared<UsageFormatter>());
  app_->allow_extras(true);  // reported by parse(), in the apps' words
  app_->option_defaults()->group("flags")->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app_->get_help_ptr()->group("flags");
}

Flags::Flags(Flags&&) noexcept = default;
Flags& Flags::operator=(Flags&&) noexcept = default;
Flags::~Flags() = default;

Flags::Flag& Flags::add(const std::string& name, Kind kind) {
  AG_CHECK(!name.empty() && name[0] != '-' && name.find_first_of("=, !{}") == std::string::npos,
           "Flags: invalid flag name '" << name << "'");
  AG_CHECK(!flags_.count(name) && name != "help" && name != "h",
           "Flags: --" << name << " is registered twice");
  order_.push_back(name);
  Flag& flag = flags_[name];
  flag.kind = kind;
  return flag;
}

Flags& Flags::add_string(const std::string& name, const std::string& def, const std::string& help) {
  Flag& f = add(name, Kind::string);
  f.text = def;
  f.option = app_->add_option("--" + name, f.text, help)->type_name("TEXT")->default_str(def);
  f.option->check(CLI::Validator(needs_a_value(any_text()), ""));
  return *this;
}

Flags& Flags::add_int(const std::string& name, int64_t def, const std::string& help) {
  Flag& f = add(name, Kind::integer);
  f.integer = def;
  f.option =
      app_->add_option("--" + name, f.integer, help)->type_name("INT")->default_str(std::to_string(def));
  f.option->transform(CLI::Validator(needs_a_value(integer()), ""));
  return *this;
}

Flags& Flags::add_double(const std::string& name, double def, const std::string& help) {
  Flag& f = add(name, Kind::real);
  f.real = def;
  std::ostringstream os;
  os << def;
  f.option = app_->add_option("--" + name, f.real, help)->type_name("NUMBER")->default_str(os.str());
  f.option->check(CLI::Validator(needs_a_value(number()), ""));
  return *this;
}

Flags& Flags::add_bool(const std::string& name, bool def, const std::string& help) {
  Flag& f = add(name, Kind::boolean);
  f.boolean = def;
  f.option =
      app_->add_flag("--" + name + ",!--no-" + name, f.boolean, help)->default_str(def ? "true" : "false");
  f.option->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  f.option->check(CLI::Validator(true_or_false(), ""));
  return *this;
}

Flags& Flags::add_choice(const std::string& name, const std::string& def,
                         const std::vector<std::string>& choices, const std::string& help) {
  bool known = false;
  for (const std::string& c : choices) known |= c == def;
  AG_CHECK(known, "Flags: the default '" << def << "' of --" << name << " is not one of its choices");
  Flag& f = add(name, Kind::choice);
  f.text = def;
  f.option = app_->add_option("--" + name, f.text, help)->type_name(join(choices, "|"))->default_str(def);
  f.option->check(CLI::Validator(needs_a_value(one_of(choices)), ""));
  return *this;
}

Flags& Flags::allow_positional(const std::string& name, const std::string& help) {
  AG_CHECK(positional_name_.empty() && !name.empty() && name[0] != '-',
           "Flags: allow_positional('" << name << "') twice or with a flag-like name");
  positional_name_ = name;
  app_->add_option(name, help)->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)->expected(-1);
  return *this;
}

void Flags::fail(const std::string& name, const std::string& message) const {
  throw UsageError("--" + name + ": " + message + " (see --help)");
}

void Flags::parse(int argc, const char* const* argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  parse(args);
}

void Flags::parse(const std::vector<std::string>& args) {
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 consumes from the back
  try {
    app_->parse(reversed);
  } catch (const CLI::CallForHelp&) {
    help_ = true;
    return;
  } catch (const CLI::ValidationError& e) {
    // "--epochs: 'three' is not an integer"
    throw UsageError(std::string(e.what()) + " (see --help)");
  } catch (const CLI::ArgumentMismatch& e) {
    const std::string name = flag_named_in(e.what());
    if (!name.empty()) fail(name, "needs a value");
    throw UsageError(std::string(e.what()) + " (see --help)");
  } catch (const CLI::ParseError& e) {
    throw UsageError(std::string(e.what()) + " (see --help)");
  }
  if (!positional_name_.empty()) positional_ = app_->get_option(positional_name_)->results();
  const std::vector<std::string> extra = app_->remaining();
  if (extra.empty()) return;
  const std::string& arg = extra.front();
  if (arg.rfind("--", 0) == 0 && arg.size() > 2)
    throw UsageError("unknown flag " + arg.substr(0, arg.find('=')) + " (see --help)");
  throw UsageError("unexpected argument '" + arg + "': flags are written --name value (see --help)");
}

std::string Flags::usage() const { return app_->help(); }

const Flags::Flag& Flags::lookup(const std::string& name, Kind kind) const {
  auto it = flags_.find(name);
  AG_CHECK(it != flags_.end(), "Flags: no flag --" << name << " was registered");
  const bool ok = it->second.kind == kind || (kind == Kind::string && it->second.kind == Kind::choice);
  AG_CHECK(ok, "Flags: --" << name << " is not of the requested type");
  return it->second;
}

std::string Flags::get_string(const std::string& name) const { return lookup(name, Kind::string).text; }
int64_t Flags::get_int(const std::string& name) const { return lookup(name, Kind::integer).integer; }
double Flags::get_double(const std::string& name) const { return lookup(name, Kind::real).real; }
bool Flags::get_bool(const std::string& name) const { return lookup(name, Kind::boolean).boolean; }

bool Flags::was_set(const std::string& name) const {
  auto it = flags_.find(name);
  AG_CHECK(it != flags_.end(), "Flags: no flag --" << name << " was registered");
  return it->second.option->count() > 0;
}

nlohmann::json Flags::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  for (const std::string& name : order_) {
    const Flag& f = flags_.at(name);
    switch (f.kind) {
      case Kind::integer:
        j[name] = f.integer;
        break;
      case Kind::real:
        j[name] = f.real;
        break;
      case Kind::boolean:
        j[name] = f.boolean;
        break;
      default:
        j[name] = f.text;
        break;
    }
  }
  return j;
}

}  // namespace ag::train
