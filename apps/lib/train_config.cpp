// TrainConfig: validation, JSON, default data folders and the train flags, all driven by
// the settings table (train_fields.h); see train_config.h.
#include "apps/lib/train_config.h"

#include <cmath>
#include <concepts>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <set>
#include <sstream>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "apps/lib/train_fields.h"

namespace ag::train {

namespace {

using nlohmann::json;

// "core/x.cpp:12: message" -> "message": a library error re-thrown as a usage error.
std::string without_location(const std::string& message) {
  static const std::regex location(R"(^[^ :]+:[0-9]+: )");
  return std::regex_replace(message, location, "", std::regex_constants::format_first_only);
}

// A bad value: "--lr must be > 0, got -1 (see --help)".
[[noreturn]] void bad(const std::string& flag, const std::string& what, const std::string& got) {
  throw UsageError("--" + flag + " " + what + ", got " + got + " (see --help)");
}
template <typename T>
std::string str(const T& v) {
  std::ostringstream os;
  os << v;
  return os.str();
}
std::string str(const std::string& v) { return v.empty() ? "\"\"" : v; }

// A value as JSON shows it ("resnet20" quoted, 0.1 plain); bytes that are not UTF-8 (a
// command line may hold any) are replaced rather than thrown on.
template <typename T>
std::string shown(const T& v) {
  return json(v).dump(-1, ' ', false, json::error_handler_t::replace);
}

template <typename T>
constexpr bool is_count = std::integral<T> && !std::same_as<T, bool>;

// Calls visit(field) for every row of the table, with the row's own type.
template <typename Visit>
void for_each_field(Visit&& visit) {
  for (const AnyField& f : train_fields()) std::visit(visit, f);
}

// Each setting on its own: its choices or range (the table's Accepts).
void validate_fields(const TrainConfig& c) {
  for_each_field([&](const auto& field) {
    const auto& v = field.member.of(c);
    using T = std::decay_t<decltype(v)>;
    std::string why;
    if constexpr (std::same_as<T, std::string>)
      why = field.accepts.complaint(v);
    else if constexpr (!std::same_as<T, bool>)
      why = field.accepts.complaint(static_cast<double>(v));
    if (!why.empty()) bad(field.flag, why, str(v));
  });
}

// The rules that tie settings together.
void validate_model_and_loss(const TrainConfig& c) {
  const std::string need = c.resolved_head();
  if (c.head != "auto" && c.head != need)
    throw UsageError(
        "--head " + c.head + " does not fit --loss " + c.loss.kind + ", which uses " +
        (need == "both" ? "both a linear and a cosine head (give --head auto)" : "a " + need + " head") +
        (c.loss.kind == "ce" ? "; a cosine head with plain softmax is --loss normface" : "") +
        " (see --help)");
  try {
    c.loss.validate();
  } catch (const Error& e) {
    throw UsageError("--loss " + c.loss.kind + ": " + without_location(e.what()) + " (see --help)");
  }
}

void validate_optimisation(const TrainConfig& c) {
  if (c.optimizer == "sgd" && c.nesterov && c.momentum == 0)
    bad("nesterov", "needs --momentum > 0 (or --no-nesterov)", "momentum 0");
  if (!(c.warmup_epochs < static_cast<double>(c.epochs)))
    bad("warmup", "must lie in [0, --epochs)", str(c.warmup_epochs));
  if (c.schedule == "onecycle" && c.warmup_epochs > 0)
    bad("warmup", "does not apply to --schedule onecycle, which warms up by itself", str(c.warmup_epochs));
}

void validate_device(const TrainConfig& c) {
  try {
    Device::parse(c.device);
  } catch (const Error&) {
    bad("device", "must be cpu, cuda or cuda:N", c.device);
  }
  if (c.precision == "bf16" && !Device::parse(c.device).is_cpu())
    bad("precision", "bf16 runs on the CPU only for now (use --device cpu, or --precision fp32 on CUDA)",
        c.precision);
}

template <typename T>
const char* type_wanted() {
  if constexpr (std::same_as<T, std::string>) return "text";
  if constexpr (std::same_as<T, bool>) return "true or false";
  if constexpr (std::same_as<T, double>) return "a number";
  return "an integer in range";
}

// One setting read from config.json; a value of the wrong type, or an integer that does
// not fit, is an error naming its key.
template <typename T>
void read_json(const json& j, const Field<T>& field, TrainConfig& c) {
  const json::json_pointer key(field.key);
  const json::json_pointer group = key.parent_pointer();
  const std::string name = std::string(field.key).substr(1);
  if (!group.empty() && j.contains(group) && !j.at(group).is_object())
    AG_FAIL("training configuration: field '" << group.to_string().substr(1) << "' is not a JSON object");
  if (!j.contains(key)) return;
  const json& v = j.at(key);
  bool ok = false;
  if constexpr (std::same_as<T, std::string>)
    ok = v.is_string();
  else if constexpr (std::same_as<T, bool>)
    ok = v.is_boolean();
  else if constexpr (std::same_as<T, double>)
    ok = v.is_number();
  else if constexpr (is_count<T>)
    ok = v.is_number_unsigned() ? std::in_range<T>(v.get<uint64_t>())
                                : v.is_number_integer() && std::in_range<T>(v.get<int64_t>());
  AG_CHECK(ok, "training configuration: field '" << name << "' is malformed (" << v.type_name() << " "
                                                 << shown(v) << " is not " << type_wanted<T>() << ")");
  field.member.of(c) = v.get<T>();
}

void add_flag(Flags& flags, const Field<std::string>& f, const std::string& def) {
  if (f.accepts.choices.empty())
    flags.add_string(f.flag, def, f.help);
  else
    flags.add_choice(f.flag, def, f.accepts.choices, f.help);
}
void add_flag(Flags& flags, const Field<bool>& f, bool def) { flags.add_bool(f.flag, def, f.help); }
void add_flag(Flags& flags, const Field<double>& f, double def) { flags.add_double(f.flag, def, f.help); }
template <typename T>
requires is_count<T>
void add_flag(Flags& flags, const Field<T>& f, T def) {
  flags.add_int(f.flag, static_cast<int64_t>(def), f.help);
}

void read_flag(const Flags& flags, const Field<std::string>& f, TrainConfig& c) {
  f.member.of(c) = flags.get_string(f.flag);
}
void read_flag(const Flags& flags, const Field<bool>& f, TrainConfig& c) {
  f.member.of(c) = flags.get_bool(f.flag);
}
void read_flag(const Flags& flags, const Field<double>& f, TrainConfig& c) {
  f.member.of(c) = flags.get_double(f.flag);
}
// Checked before it is narrowed to the member's type (--seed -2 must not become 2^64 - 2).
template <typename T>
requires is_count<T>
void read_flag(const Flags& flags, const Field<T>& f, TrainConfig& c) {
  const int64_t v = flags.get_int(f.flag);
  const std::string why = f.accepts.complaint(static_cast<double>(v));
  if (!why.empty()) bad(f.flag, why, str(v));
  if (!std::in_range<T>(v)) bad(f.flag, "is out of range", str(v));
  f.member.of(c) = static_cast<T>(v);
}

// "--epochs, --threads ... and --plots".
std::string resumable_flags() {
  std::vector<std::string> names;
  for (const AnyField& f : train_fields())
    if (may_change_on_resume(f)) names.push_back(std::string("--") + flag_of(f));
  std::string out;
  for (size_t i = 0; i < names.size(); ++i)
    out += (i == 0 ? "" : i + 1 == names.size() ? " and " : ", ") + names[i];
  return out;
}

}  // namespace

std::string TrainConfig::resolved_head() const {
  if (loss.kind == "ce") return "linear";
  if (loss.kind == "joint") return "both";
  return "cosine";
}

void TrainConfig::validate() const {
  validate_fields(*this);
  validate_model_and_loss(*this);
  validate_optimisation(*this);
  validate_device(*this);
}

std::string TrainConfig::describe() const {
  std::ostringstream os;
  os << dataset << " " << model << " " << loss.describe() << " " << epochs << " epochs, batch " << batch_size
     << ", " << optimizer << " lr " << lr << " " << schedule;
  if (train_subset > 0) os << ", train subset " << train_subset;
  if (test_subset > 0) os << ", test subset " << test_subset;
  if (precision != "fp32") os << ", " << precision << " matmuls";
  return os.str();
}

json TrainConfig::to_json() const {
  json j = json::object();
  for_each_field([&](const auto& field) { j[json::json_pointer(field.key)] = field.member.of(*this); });
  j["loss"]["description"] = loss.describe();  // for readers of config.json; never read back
  return j;
}

TrainConfig TrainConfig::from_json(const json& j) {
  AG_CHECK(j.is_object(), "training configuration: expected a JSON object, got " << j.type_name());
  TrainConfig c;
  for_each_field([&](const auto& field) { read_json(j, field, c); });
  return c;
}

std::string default_data_dir(const std::string& dataset) {
  std::string folder;
  if (dataset == "cifar10") folder = "cifar-10-batches-bin";
  if (dataset == "cifar100") folder = "cifar-100-binary";
  if (folder.empty()) return "";
  if (const char* root = std::getenv("ARCGRAD_DATA"); root != nullptr && *root != '\0') {
    const std::filesystem::path p = std::filesystem::path(root) / folder;
    if (std::filesystem::is_directory(p)) return p.string();
  }
  return (std::filesystem::path("datasets") / folder).string();
}

void add_train_flags(Flags& flags, const std::set<std::string>& skip) {
  const TrainConfig defaults;
  for_each_field([&](const auto& field) {
    if (!skip.count(field.flag)) add_flag(flags, field, field.member.of(defaults));
  });
}

TrainConfig config_from_flags(const Flags& flags, const std::set<std::string>& skip) {
  TrainConfig c;
  for_each_field([&](const auto& field) {
    if (!skip.count(field.flag)) read_flag(flags, field, c);
  });
  c.validate();
  return c;
}

std::string resume_conflict(const TrainConfig& saved, const TrainConfig& now) {
  std::string conflict;
  for_each_field([&](const auto& field) {
    const auto &was = field.member.of(saved), &is = field.member.of(now);
    if (conflict.empty() && !field.may_change_on_resume && was != is)
      conflict = "--" + std::string(field.flag) + " was " + shown(was) + ", now " + shown(is);
  });
  return conflict;
}

namespace {
// True when a and b are two spellings of one existing folder ("../shared/x" and "/work/shared/x"):
// a resumed run given its data folder another way keeps its configuration.
template <typename T>
bool same_folder(const T& a, const T& b) {
  if constexpr (std::is_same_v<T, std::string>) {
    std::error_code ec;
    return !a.empty() && !b.empty() && std::filesystem::equivalent(a, b, ec) && !ec;
  } else {
    return false;
  }
}
}  // namespace

TrainConfig merge_resume_flags(const TrainConfig& saved, const Flags& flags) {
  const TrainConfig given = config_from_flags(flags);
  TrainConfig c = saved;
  for_each_field([&](const auto& field) {
    if (!flags.was_set(field.flag)) return;
    const auto& value = field.member.of(given);
    if (field.may_change_on_resume)
      field.member.of(c) = value;
    else if (value != field.member.of(saved) &&
             !(field.flag == std::string("data-dir") && same_folder(value, field.member.of(saved))))
      throw UsageError("--" + std::string(field.flag) + " " + shown(value) +
                       " differs from the resumed run's " + shown(field.member.of(saved)) +
                       "; a resumed run keeps its configuration (it may change only " + resumable_flags() +
                       ")");
  });
  c.resume = true;
  c.out = given.out;
  c.validate();
  return c;
}

}  // namespace ag::train
