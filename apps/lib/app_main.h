// The frame every app's main() shares: build and parse the flags, answer --help, run the
// app, and turn an exception into one line on stderr and the documented exit status, so
// that all apps fail the same way.
#pragma once

#include <functional>

#include "apps/lib/flags.h"

namespace ag::train {

// Exit status: what `body` returns; 0 after --help; 2 for a bad command line (UsageError);
// 3 when training diverged (TrainingDiverged); 1 for any other error.
// In a data-parallel run (after dist::init under mpirun) an error on any rank ends the
// whole job with that status (Communicator::abort), so no rank waits forever for it.
int run_app(int argc, char** argv, const std::function<Flags()>& make_flags,
            const std::function<int(const Flags&)>& body);

}  // namespace ag::train
