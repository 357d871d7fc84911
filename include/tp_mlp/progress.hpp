// Progress of the long loops on stderr, for a person at a terminal: from rank 0 only, only
// when stderr is a terminal, only once the program has run a few seconds (a quick run shows
// nothing), and erased when the loop ends, so that stdout's report and a redirected stderr
// stay exactly as they would be without it.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace tp_mlp {

class Progress {
 public:
  // Shown by one rank only: the one for which `speaks` (world rank 0).
  Progress(bool speaks, std::string what, std::size_t total);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void tick(std::size_t done);  // `done` of `total` steps finished

 private:
  using Clock = std::chrono::steady_clock;
  const bool shows_;
  const std::string what_;
  const std::size_t total_;
  Clock::time_point drawn_at_;
  bool drawn_ = false;
};

}  // namespace tp_mlp
