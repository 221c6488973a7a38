#include "core/parallel.h"

#include <omp.h>

#include <cstdlib>

#include "core/error.h"

namespace ag {

namespace {
int initial_threads() {
  if (const char* env = std::getenv("AG_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) {
      omp_set_num_threads(n);
      return n;
    }
  }
  return omp_get_max_threads();
}
int g_threads = initial_threads();
}  // namespace

void set_num_threads(int n) {
  AG_CHECK(n > 0, "thread count must be positive, got " << n);
  g_threads = n;
  omp_set_num_threads(n);
}

int num_threads() { return g_threads; }

}  // namespace ag
