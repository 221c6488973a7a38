// Training progress: on a terminal, one line redrawn in place with \r (bar, step, loss,
// accuracy, images/s, ETA); otherwise (a log file, a pipe) plain lines a few times per
// phase, so logs stay readable.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>

namespace ag::train {

struct ProgressOptions {
  enum class Mode { automatic, terminal, lines };
  Mode mode = Mode::automatic;    // automatic: terminal when out is a tty (std::cout/std::cerr only)
  std::ostream* out = nullptr;    // null: std::cerr
  int64_t lines_per_phase = 10;   // plain mode: about this many lines per phase
  double redraw_seconds = 0.1;    // terminal mode: at most one redraw per this interval
  std::function<double()> clock;  // seconds; null: a steady clock (tests inject one)
};

// "0:42", "12:05", "1:02:03".
std::string format_duration(double seconds);

class ProgressBar {
 public:
  // label: e.g. "epoch 3/10 train"; total_steps >= 1.
  ProgressBar(std::string label, int64_t total_steps, ProgressOptions options = {});
  // After each step: done steps so far (1..total), images so far, and the running loss and
  // accuracy (a fraction; NaN to leave it out).
  void update(int64_t done, int64_t images, double loss, double accuracy);
  // A phase resumed from a checkpoint: `done` steps and `images` images were done before this
  // process started, so the rate and the ETA count only what is done from here on.
  void resume_at(int64_t done, int64_t images);
  // Ends the display (a final line / newline). Called by the destructor if needed.
  void finish();
  ~ProgressBar();
  bool is_terminal() const { return terminal_; }

 private:
  std::string render(bool with_bar) const;

  std::string label_;
  int64_t total_;
  ProgressOptions options_;
  std::ostream* out_;
  bool terminal_;
  double start_, last_draw_ = -1e300;
  int64_t done_ = 0, images_ = 0, every_;
  int64_t done_at_start_ = 0, images_at_start_ = 0;  // see resume_at
  double loss_ = 0, accuracy_ = 0;
  bool finished_ = false, drawn_ = false;
};

}  // namespace ag::train
