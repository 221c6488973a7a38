// One seeded generator per program, so runs are reproducible: every random init, dropout
// mask, shuffle and augmentation draws from a Generator that descends from the seed given
// to manual_seed(). The algorithms are spelled out here (not std:: distributions, whose
// output differs between standard libraries), so a seed means the same thing everywhere.
#pragma once

#include <cstdint>

namespace ag {

// SplitMix64-seeded xoshiro256**: fast, small state, good statistics.
class Generator {
 public:
  explicit Generator(uint64_t seed = 0x5eed) { seed_with(seed); }
  void seed_with(uint64_t seed);
  uint64_t next_u64();
  double uniform();  // [0, 1)
  double uniform(double low, double high);
  double normal(double mean = 0.0, double stddev = 1.0);  // Box-Muller
  uint64_t below(uint64_t n);                             // uniform integer in [0, n)
  // A generator for a stream derived from this one's state and a stream id (e.g. a worker
  // or sample index), without advancing this one.
  Generator fork(uint64_t stream) const;

  struct State {
    uint64_t s[4];
  };
  State state() const { return {{s_[0], s_[1], s_[2], s_[3]}}; }
  void set_state(const State& st) {
    for (int i = 0; i < 4; ++i) s_[i] = st.s[i];
  }

 private:
  uint64_t s_[4];
};

// The program-wide generator.
Generator& global_generator();
void manual_seed(uint64_t seed);

}  // namespace ag
