// Which route each CPU convolution took: a debug counter per pass and route (routes.cpp
// holds the tables). Tests read it to check that every route runs for the shapes meant to
// reach it; counting is a relaxed atomic increment per call.
#pragma once

#include <cstdint>
#include <vector>

namespace ag::cpu {

enum class ConvPass { forward, input_grad, weight_grad };

const char* conv_pass_name(ConvPass pass);

struct ConvRouteCount {
  ConvPass pass;
  const char* route;  // the route's name in its table
  uint64_t calls;     // calls that took it since the last reset
};

// Every route of the three tables (forward, input gradient, weight gradient), in table
// order, with its calls.
std::vector<ConvRouteCount> conv_route_counts();
void reset_conv_route_counts();

}  // namespace ag::cpu
