// The app side of data parallelism that needs no second process: how the launcher's
// environment is read, the advice when MPI is missing, the device of each rank.
#include <doctest/doctest.h>

#include <cstdlib>

#include "apps/lib/distributed.h"
#include "apps/lib/flags.h"

using namespace ag;
using namespace ag::train;

namespace {

// Sets an environment variable for the scope of the object.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) { ::setenv(name, value, 1); }
  ~ScopedEnv() { ::unsetenv(name_); }

 private:
  const char* name_;
};

}  // namespace

TEST_CASE("launcher size: read from Open MPI's, PMI's or Slurm's variables, else 1") {
  CHECK(launcher_world_size() == 1);
  {
    ScopedEnv e("OMPI_COMM_WORLD_SIZE", "4");
    CHECK(launcher_world_size() == 4);
  }
  {
    ScopedEnv e("PMI_SIZE", "3");
    CHECK(launcher_world_size() == 3);
  }
  CHECK(launcher_world_size() == 1);
}

TEST_CASE("started as one of several processes without MPI built: the advice to build it") {
  CHECK_NOTHROW(require_mpi_if_launched());  // no launcher: nothing to say
  ScopedEnv e("OMPI_COMM_WORLD_SIZE", "2");
  if (dist::built_with_mpi()) {
    CHECK_NOTHROW(require_mpi_if_launched());
  } else {
    CHECK_THROWS_WITH_AS(require_mpi_if_launched(), doctest::Contains("-DAG_USE_MPI=ON"), UsageError);
    CHECK_THROWS_WITH_AS(require_mpi_if_launched(), doctest::Contains("libopenmpi-dev"), UsageError);
  }
}

TEST_CASE("rank device: one process keeps --device; cpu stays cpu") {
  dist::Communicator& one = dist::world();  // this test runs without a launcher: one rank
  REQUIRE(one.size() == 1);
  CHECK(rank_device("cpu", one) == Device::cpu());
  CHECK(rank_device("cuda", one) == Device::cuda(0));
  CHECK(rank_device("cuda:1", one) == Device::cuda(1));
  CHECK_THROWS_AS(rank_device("tpu", one), Error);
}
