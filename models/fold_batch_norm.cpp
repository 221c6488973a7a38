#include "models/fold_batch_norm.h"

#include "layers/module_io.h"
#include "models/blocks.h"

namespace ag {

int64_t fold_batch_norm(Module& root) {
  root.eval();
  // Collected first: folding frees the batch norms, which the module list points to.
  std::vector<ConvBn*> blocks;
  for (auto& [_, m] : root.named_modules())
    if (auto* block = dynamic_cast<ConvBn*>(m); block && !block->folded()) blocks.push_back(block);
  for (ConvBn* block : blocks) block->fold_batch_norm();
  return static_cast<int64_t>(blocks.size());
}

int64_t fold_batch_norm_copy(const Module& trained, Module& fresh) {
  serialize::load_module_state(fresh, serialize::module_state(trained), "fold_batch_norm_copy");
  return fold_batch_norm(fresh);
}

}  // namespace ag
