#include "apps/lib/app_main.h"

#include <iostream>
#include <new>

#include "apps/lib/trainer.h"
#include "core/dist/comm.h"

namespace ag::train {

namespace {

// Prints "program: message" and returns code; in a data-parallel run, ends every rank of the
// job instead (MPI_Abort), since the others may be waiting for this one in a collective and
// would otherwise hang until the launcher noticed.
int fail(const std::string& program, int code, const std::string& message) {
  if (dist::is_distributed()) dist::world().abort(code, program + ": " + message);
  std::cerr << program << ": " << message << "\n";
  return code;
}

}  // namespace

int run_app(int argc, char** argv, const std::function<Flags()>& make_flags,
            const std::function<int(const Flags&)>& body) {
  std::string program = argc > 0 ? argv[0] : "app";
  program = program.substr(program.find_last_of('/') + 1);  // npos + 1 == 0: the whole name
  try {
    Flags flags = make_flags();
    flags.parse(argc, argv);
    if (flags.help_requested()) {
      if (!dist::is_distributed() || dist::world().rank() == 0) std::cout << flags.usage();
      return 0;
    }
    return body(flags);
  } catch (const UsageError& e) {
    return fail(program, 2, e.what());
  } catch (const TrainingDiverged& e) {
    return fail(program, 3, std::string("diverged: ") + e.what());
  } catch (const std::bad_alloc&) {
    return fail(program, 1,
                "error: out of host memory (an allocation outside arcgrad's tensors failed); use smaller "
                "batches or raise the memory limit");
  } catch (const std::exception& e) {
    return fail(program, 1, std::string("error: ") + e.what());
  }
}

}  // namespace ag::train
