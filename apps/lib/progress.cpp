// Progress display; see progress.h.
#include "apps/lib/progress.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>

#include "core/error.h"

namespace ag::train {

namespace {
double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

bool stream_is_tty(const std::ostream* out) {
  if (out == &std::cerr || out == &std::clog) return ::isatty(STDERR_FILENO);
  if (out == &std::cout) return ::isatty(STDOUT_FILENO);
  return false;
}
}  // namespace

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  const auto s = static_cast<int64_t>(std::llround(seconds));
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  } else {
    std::snprintf(buf, sizeof buf, "%lld:%02lld", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  }
  return buf;
}

ProgressBar::ProgressBar(std::string label, int64_t total_steps, ProgressOptions options)
    : label_(std::move(label)), total_(total_steps), options_(std::move(options)) {
  AG_CHECK(total_steps >= 1, "ProgressBar: total_steps must be >= 1, got " << total_steps);
  AG_CHECK(options_.lines_per_phase >= 1, "ProgressBar: lines_per_phase must be >= 1");
  if (!options_.clock) options_.clock = steady_seconds;
  out_ = options_.out ? options_.out : &std::cerr;
  using Mode = ProgressOptions::Mode;
  terminal_ = options_.mode == Mode::terminal || (options_.mode == Mode::automatic && stream_is_tty(out_));
  every_ = (total_ + options_.lines_per_phase - 1) / options_.lines_per_phase;
  start_ = options_.clock();
}

ProgressBar::~ProgressBar() {
  try {
    finish();
  } catch (...) {  // a destructor must not throw; the display is best effort
  }
}

std::string ProgressBar::render(bool with_bar) const {
  const double elapsed = options_.clock() - start_;
  const int64_t done_here = done_ - done_at_start_, images_here = images_ - images_at_start_;
  const double rate = elapsed > 0 ? static_cast<double>(images_here) / elapsed : 0.0;
  const double eta =
      done_here > 0 ? elapsed / static_cast<double>(done_here) * static_cast<double>(total_ - done_) : NAN;
  std::string text = label_ + " ";
  if (with_bar) {
    const int64_t width = 20, filled = done_ * width / total_;
    text += '[';
    text.append(filled, '#').append(width - filled, '.');
    text += "] ";
  }
  char buf[160];
  std::snprintf(buf, sizeof buf, "%lld/%lld loss %.4f", static_cast<long long>(done_),
                static_cast<long long>(total_), loss_);
  text += buf;
  if (!std::isnan(accuracy_)) {
    std::snprintf(buf, sizeof buf, " acc %.2f%%", 100.0 * accuracy_);
    text += buf;
  }
  std::snprintf(buf, sizeof buf, " %.0f img/s", rate);
  text += buf;
  text += done_ < total_ ? " ETA " + format_duration(eta) : " in " + format_duration(elapsed);
  return text;
}

void ProgressBar::resume_at(int64_t done, int64_t images) {
  AG_CHECK(done >= 0 && done <= total_ && images >= 0, "ProgressBar: resume point "
                                                           << done << " steps, " << images
                                                           << " images outside [0, " << total_ << "]");
  done_at_start_ = done_ = done;
  images_at_start_ = images_ = images;
}

void ProgressBar::update(int64_t done, int64_t images, double loss, double accuracy) {
  AG_CHECK(done >= 0 && done <= total_, "ProgressBar: step " << done << " outside [0, " << total_ << "]");
  done_ = done;
  images_ = images;
  loss_ = loss;
  accuracy_ = accuracy;
  if (terminal_) {
    const double now = options_.clock();
    if (done_ < total_ && now - last_draw_ < options_.redraw_seconds) return;
    last_draw_ = now;
    // \r back to the line start; \033[K clears what a longer previous line left behind.
    *out_ << '\r' << render(true) << "\033[K" << std::flush;
    drawn_ = true;
  } else if (done_ % every_ == 0 || done_ == total_) {
    *out_ << render(false) << '\n' << std::flush;
    drawn_ = true;
  }
}

void ProgressBar::finish() {
  if (finished_) return;
  finished_ = true;
  if (terminal_ && drawn_) *out_ << '\n' << std::flush;
}

}  // namespace ag::train
