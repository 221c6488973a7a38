// The one table of TrainConfig's settings (train_fields.cpp). Each row names a setting's
// flag, its key in config.json, the member it lives in, its help text, the values it
// accepts and whether a resumed run may change it; train's flags, --help, to_json,
// from_json, validate() and the resume checks are all generated from it. A new setting
// is a member of TrainConfig plus one row here.
//
//   field("lr", "/lr", &TrainConfig::lr, "base (peak) learning rate").above(0),
//   field("s", "/loss/s", &MarginLossConfig::s, "logit scale of the margin losses"),
//   field("epochs", "/epochs", &TrainConfig::epochs, "passes over the training set").at_least(1).resumable(),
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <variant>
#include <vector>

#include "apps/lib/train_config.h"

namespace ag::train {

// Where a setting lives: a member of TrainConfig or of its loss (MarginLossConfig).
template <typename T>
class Member {
 public:
  Member(T TrainConfig::*top) : top_(top) {}
  Member(T MarginLossConfig::*in_loss) : in_loss_(in_loss) {}
  T& of(TrainConfig& c) const { return top_ ? c.*top_ : c.loss.*in_loss_; }
  const T& of(const TrainConfig& c) const { return top_ ? c.*top_ : c.loss.*in_loss_; }

 private:
  T TrainConfig::*top_ = nullptr;
  T MarginLossConfig::*in_loss_ = nullptr;
};

// The values a setting accepts on its own (rules that involve two settings, such as
// --warmup < --epochs, are TrainConfig::validate()'s): a text one of `choices` (none:
// any text, or any non-empty one), a number within [lo, hi], each end open where said.
struct Accepts {
  std::vector<std::string> choices;
  bool non_empty = false;
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool lo_open = false, hi_open = false;

  // "" when the value is acceptable, else what it must be ("must lie in [0, 1)").
  std::string complaint(const std::string& v) const;
  std::string complaint(double v) const;
};

template <typename T>
struct Field {
  const char* flag;  // without its "--"
  const char* key;   // a JSON pointer into TrainConfig::to_json(): "/lr", "/loss/s"
  Member<T> member;
  const char* help;  // the flag's help text; --help adds the default
  Accepts accepts{};
  bool may_change_on_resume = false;

  // Row builders, so that a row reads as a sentence: field(...).at_least(1).resumable().
  Field one_of(std::vector<std::string> choices) && {
    accepts.choices = std::move(choices);
    return std::move(*this);
  }
  Field not_empty() && { return set(accepts.non_empty, true); }
  Field at_least(double lo) && { return set(accepts.lo, lo); }
  Field above(double lo) && { return set(accepts.lo_open, true).set(accepts.lo, lo); }
  Field below(double hi) && { return set(accepts.hi_open, true).set(accepts.hi, hi); }
  Field within(double lo, double hi) && { return set(accepts.lo, lo).set(accepts.hi, hi); }
  // It does not change the numbers a run produces (--epochs extends the run), so a resumed
  // run may give it anew.
  Field resumable() && { return set(may_change_on_resume, true); }

 private:
  template <typename V>
  Field&& set(V& member, V value) {
    member = value;
    return std::move(*this);
  }
};

template <typename T, typename Owner>
Field<T> field(const char* flag, const char* key, T Owner::*member, const char* help) {
  return Field<T>{flag, key, Member<T>(member), help};
}

using AnyField =
    std::variant<Field<std::string>, Field<bool>, Field<int>, Field<int64_t>, Field<uint64_t>, Field<double>>;

// Every setting of TrainConfig, in --help order.
const std::vector<AnyField>& train_fields();

// The parts every row has, whatever its type.
inline const char* flag_of(const AnyField& f) {
  return std::visit([](const auto& x) { return x.flag; }, f);
}
inline const char* key_of(const AnyField& f) {
  return std::visit([](const auto& x) { return x.key; }, f);
}
inline const char* help_of(const AnyField& f) {
  return std::visit([](const auto& x) { return x.help; }, f);
}
inline bool may_change_on_resume(const AnyField& f) {
  return std::visit([](const auto& x) { return x.may_change_on_resume; }, f);
}

}  // namespace ag::train
