// run: what every stage of one run shares: the configuration, the world, this rank's group.
#pragma once

#include "tp_mlp/comm.hpp"
#include "tp_mlp/config.hpp"

namespace tp_mlp {

struct Run {
  const Config& cfg;
  const World& world;
  TpComm& tp;
};

}  // namespace tp_mlp
