// Learning-rate schedules, step-based: lr(step) for step = 0, 1, 2, ... (the number of
// optimizer steps taken so far). The training loop calls opt.set_lr(schedule.lr(step))
// before each step, so a schedule is a pure function of the step and needs no state in a
// checkpoint.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ag::optim {

class LRSchedule {
 public:
  virtual ~LRSchedule() = default;
  virtual double lr(int64_t step) const = 0;  // step >= 0
  virtual std::string describe() const = 0;
};
using SchedulePtr = std::shared_ptr<const LRSchedule>;

// lr = base.
class ConstantLR : public LRSchedule {
 public:
  explicit ConstantLR(double base);
  double lr(int64_t step) const override;
  std::string describe() const override;

 private:
  double base_;
};

// lr = base * gamma^(number of milestones <= step). Milestones strictly increasing, >= 1.
class StepLR : public LRSchedule {
 public:
  StepLR(double base, std::vector<int64_t> milestones, double gamma);
  double lr(int64_t step) const override;
  std::string describe() const override;

 private:
  double base_;
  std::vector<int64_t> milestones_;
  double gamma_;
};

// Half a cosine from base (step 0) down to floor (step total_steps and after):
// lr = floor + (base - floor) * (1 + cos(pi * step / total_steps)) / 2.
class CosineLR : public LRSchedule {
 public:
  CosineLR(double base, int64_t total_steps, double floor = 0.0);
  double lr(int64_t step) const override;
  std::string describe() const override;

 private:
  double base_;
  int64_t total_;
  double floor_;
};

// Linear warm-up in front of another schedule: for step < warmup_steps the rate rises
// linearly from start_factor * after.lr(0) to after.lr(0) (reached at step warmup_steps);
// from then on lr(step) = after.lr(step - warmup_steps), i.e. the inner schedule starts
// when the warm-up ends (give it total_steps - warmup_steps as its length).
class WarmupLR : public LRSchedule {
 public:
  WarmupLR(SchedulePtr after, int64_t warmup_steps, double start_factor = 0.0);
  double lr(int64_t step) const override;
  std::string describe() const override;

 private:
  SchedulePtr after_;
  int64_t warmup_;
  double start_factor_;
};

// PyTorch's OneCycleLR with cosine annealing (three_phase off; the learning rate only,
// no momentum cycling): from max_lr / div_factor up to max_lr at step
// pct_start * total_steps - 1, then down to max_lr / div_factor / final_div_factor at step
// total_steps - 1; later steps keep that final value.
class OneCycleLR : public LRSchedule {
 public:
  OneCycleLR(double max_lr, int64_t total_steps, double pct_start = 0.3, double div_factor = 25.0,
             double final_div_factor = 1e4);
  double lr(int64_t step) const override;
  std::string describe() const override;

 private:
  double max_lr_, initial_lr_, min_lr_;
  int64_t total_;
  double warm_end_;  // the step where the rate peaks (may be fractional, as in PyTorch)
};

// The schedule the apps' --schedule flag names: "constant", "step" (x0.1 at 50% and 75%
// of total_steps), "cosine" (to 0) or "onecycle" (base_lr is the peak); warmup_steps > 0
// puts a linear warm-up from 0 in front (not allowed with onecycle, which has its own).
SchedulePtr make_schedule(const std::string& name, double base_lr, int64_t total_steps,
                          int64_t warmup_steps = 0);

}  // namespace ag::optim
