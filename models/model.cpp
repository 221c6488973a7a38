#include "models/model.h"

#include "models/trace.h"

namespace ag {

Tensor Model::forward(const Tensor& x) {
  Tensor f = features(x);
  return head_ ? call_layer(*head_, f) : f;
}

void Model::set_head(ModulePtr head) {
  AG_CHECK(head != nullptr, type_name() << ": set_head got a null module");
  AG_CHECK(head_ == nullptr, type_name() << " already has a head (" << head_->type_name()
                                         << "); build the model with head \"none\" to attach another one");
  head_ = head;
  register_module("fc", std::move(head));
}

}  // namespace ag
