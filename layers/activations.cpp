#include "layers/activations.h"

namespace ag {

std::string ActivationLayer::type_name() const { return activation_title(act_); }

ModulePtr make_activation(Activation act) { return std::make_shared<ActivationLayer>(act); }

}  // namespace ag
