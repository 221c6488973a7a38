// Learning-rate schedules as pure functions of the step.
#include "core/optim/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <sstream>

#include "core/error.h"

namespace ag::optim {

namespace {
void check_rate(const char* who, const char* what, double v) {
  AG_CHECK(std::isfinite(v) && v >= 0.0, who << ": " << what << " must be finite and >= 0, got " << v);
}
void check_step(const char* who, int64_t step) {
  AG_CHECK(step >= 0, who << ": step must be >= 0, got " << step);
}
// Cosine interpolation from start (pct 0) to end (pct 1).
double cos_anneal(double start, double end, double pct) {
  return end + (start - end) / 2.0 * (std::cos(std::numbers::pi * pct) + 1.0);
}
}  // namespace

ConstantLR::ConstantLR(double base) : base_(base) { check_rate("ConstantLR", "the rate", base); }
double ConstantLR::lr(int64_t step) const {
  check_step("ConstantLR", step);
  return base_;
}
std::string ConstantLR::describe() const { return "constant " + std::to_string(base_); }

StepLR::StepLR(double base, std::vector<int64_t> milestones, double gamma)
    : base_(base), milestones_(std::move(milestones)), gamma_(gamma) {
  check_rate("StepLR", "the base rate", base);
  check_rate("StepLR", "gamma", gamma);
  for (size_t i = 0; i < milestones_.size(); ++i)
    AG_CHECK(milestones_[i] >= 1 && (i == 0 || milestones_[i] > milestones_[i - 1]),
             "StepLR: milestones must be >= 1 and strictly increasing, got " << milestones_[i]
                                                                             << " at position " << i);
}
double StepLR::lr(int64_t step) const {
  check_step("StepLR", step);
  const auto passed = std::upper_bound(milestones_.begin(), milestones_.end(), step) - milestones_.begin();
  return base_ * std::pow(gamma_, static_cast<double>(passed));
}
std::string StepLR::describe() const {
  std::ostringstream os;
  os << "step " << base_ << " x" << gamma_ << " at";
  for (int64_t m : milestones_) os << " " << m;
  return os.str();
}

CosineLR::CosineLR(double base, int64_t total_steps, double floor)
    : base_(base), total_(total_steps), floor_(floor) {
  check_rate("CosineLR", "the base rate", base);
  check_rate("CosineLR", "the floor", floor);
  AG_CHECK(total_steps >= 1, "CosineLR: total_steps must be >= 1, got " << total_steps);
}
double CosineLR::lr(int64_t step) const {
  check_step("CosineLR", step);
  const double pct = static_cast<double>(std::min(step, total_)) / static_cast<double>(total_);
  return cos_anneal(base_, floor_, pct);
}
std::string CosineLR::describe() const {
  std::ostringstream os;
  os << "cosine " << base_ << " -> " << floor_ << " over " << total_ << " steps";
  return os.str();
}

WarmupLR::WarmupLR(SchedulePtr after, int64_t warmup_steps, double start_factor)
    : after_(std::move(after)), warmup_(warmup_steps), start_factor_(start_factor) {
  AG_CHECK(after_ != nullptr, "WarmupLR: the schedule after the warm-up is missing");
  AG_CHECK(warmup_steps >= 0, "WarmupLR: warmup_steps must be >= 0, got " << warmup_steps);
  AG_CHECK(start_factor >= 0.0 && start_factor <= 1.0,
           "WarmupLR: start_factor must lie in [0, 1], got " << start_factor);
}
double WarmupLR::lr(int64_t step) const {
  check_step("WarmupLR", step);
  if (step >= warmup_) return after_->lr(step - warmup_);
  const double frac = static_cast<double>(step) / static_cast<double>(warmup_);
  return after_->lr(0) * (start_factor_ + (1.0 - start_factor_) * frac);
}
std::string WarmupLR::describe() const {
  return "linear warm-up over " + std::to_string(warmup_) + " steps, then " + after_->describe();
}

OneCycleLR::OneCycleLR(double max_lr, int64_t total_steps, double pct_start, double div_factor,
                       double final_div_factor)
    : max_lr_(max_lr), total_(total_steps) {
  check_rate("OneCycleLR", "max_lr", max_lr);
  AG_CHECK(total_steps >= 2, "OneCycleLR: total_steps must be >= 2, got " << total_steps);
  AG_CHECK(pct_start > 0.0 && pct_start < 1.0, "OneCycleLR: pct_start must lie in (0, 1), got " << pct_start);
  AG_CHECK(div_factor > 0.0 && final_div_factor > 0.0,
           "OneCycleLR: div_factor and final_div_factor must be > 0, got " << div_factor << " and "
                                                                           << final_div_factor);
  initial_lr_ = max_lr / div_factor;
  min_lr_ = initial_lr_ / final_div_factor;
  warm_end_ = pct_start * static_cast<double>(total_steps) - 1.0;
  AG_CHECK(warm_end_ > 0.0 && warm_end_ < static_cast<double>(total_steps - 1),
           "OneCycleLR: pct_start " << pct_start << " leaves no room for both phases in " << total_steps
                                    << " steps");
}
double OneCycleLR::lr(int64_t step) const {
  check_step("OneCycleLR", step);
  const double s = static_cast<double>(std::min(step, total_ - 1));
  if (s <= warm_end_) return cos_anneal(initial_lr_, max_lr_, s / warm_end_);
  const double last = static_cast<double>(total_ - 1);
  return cos_anneal(max_lr_, min_lr_, (s - warm_end_) / (last - warm_end_));
}
std::string OneCycleLR::describe() const {
  std::ostringstream os;
  os << "one-cycle " << initial_lr_ << " -> " << max_lr_ << " -> " << min_lr_ << " over " << total_
     << " steps";
  return os.str();
}

SchedulePtr make_schedule(const std::string& name, double base_lr, int64_t total_steps,
                          int64_t warmup_steps) {
  AG_CHECK(total_steps >= 1, "schedule: total_steps must be >= 1, got " << total_steps);
  AG_CHECK(warmup_steps >= 0 && warmup_steps < total_steps,
           "schedule: warm-up steps must lie in [0, " << total_steps << "), got " << warmup_steps);
  const int64_t rest = total_steps - warmup_steps;
  SchedulePtr s;
  if (name == "constant") {
    s = std::make_shared<ConstantLR>(base_lr);
  } else if (name == "step") {
    std::vector<int64_t> milestones;
    for (int64_t m : {rest / 2, rest * 3 / 4})
      if (m >= 1 && (milestones.empty() || m > milestones.back())) milestones.push_back(m);
    s = std::make_shared<StepLR>(base_lr, milestones, 0.1);
  } else if (name == "cosine") {
    s = std::make_shared<CosineLR>(base_lr, rest, 0.0);
  } else if (name == "onecycle") {
    AG_CHECK(warmup_steps == 0, "schedule: onecycle has its own warm-up; drop the extra warm-up steps");
    return std::make_shared<OneCycleLR>(base_lr, total_steps);
  } else {
    AG_FAIL("schedule: unknown schedule '" << name << "' (expected constant, step, cosine or onecycle)");
  }
  if (warmup_steps == 0) return s;
  return std::make_shared<WarmupLR>(s, warmup_steps, 0.0);
}

}  // namespace ag::optim
