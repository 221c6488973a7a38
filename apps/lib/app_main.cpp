#include "apps/lib/app_main.h"

#include <iostream>
#include <new>

#include "apps/lib/trainer.h"

namespace ag::train {

int run_app(int argc, char** argv, const std::function<Flags()>& make_flags,
            const std::function<int(const Flags&)>& body) {
  std::string program = argc > 0 ? argv[0] : "app";
  program = program.substr(program.find_last_of('/') + 1);  // npos + 1 == 0: the whole name
  try {
    Flags flags = make_flags();
    flags.parse(argc, argv);
    if (flags.help_requested()) {
      std::cout << flags.usage();
      return 0;
    }
    return body(flags);
  } catch (const UsageError& e) {
    std::cerr << program << ": " << e.what() << "\n";
    return 2;
  } catch (const TrainingDiverged& e) {
    std::cerr << program << ": diverged: " << e.what() << "\n";
    return 3;
  } catch (const std::bad_alloc&) {
    std::cerr << program << ": error: out of host memory (an allocation outside arcgrad's tensors failed); "
              << "use smaller batches or raise the memory limit\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << program << ": error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace ag::train
