// Progress on stderr: a line redrawn in place at most a few times a second.
#include "tp_mlp/progress.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace tp_mlp {

namespace {

using Clock = std::chrono::steady_clock;
const Clock::time_point kProgramStart = Clock::now();  // static initialisation, before main
constexpr std::chrono::seconds kQuietFor{2};           // runs shorter than this show nothing
constexpr std::chrono::milliseconds kRedrawEvery{250};

// Ours, or else the launcher's: mpirun hands each rank a pipe for stderr and copies it to
// its own, which is the terminal the person watches.
bool stderr_is_a_terminal() {
  if (isatty(STDERR_FILENO) == 1) return true;
  const std::string launchers = "/proc/" + std::to_string(getppid()) + "/fd/2";
  const int fd = open(launchers.c_str(), O_WRONLY | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool terminal = isatty(fd) == 1;
  close(fd);
  return terminal;
}

}  // namespace

Progress::Progress(bool speaks, std::string what, std::size_t total)
    : shows_(speaks && stderr_is_a_terminal()), what_(std::move(what)), total_(total) {}

Progress::~Progress() {
  if (drawn_) std::fprintf(stderr, "\r\033[K");  // erase the line: the report follows clean
}

void Progress::tick(std::size_t done) {
  if (!shows_) return;
  const Clock::time_point now = Clock::now();
  if (now - kProgramStart < kQuietFor || (drawn_ && now - drawn_at_ < kRedrawEvery)) return;
  std::fprintf(stderr, "\r\033[K  %s: %zu/%zu passes", what_.c_str(), done, total_);
  std::fflush(stderr);
  drawn_at_ = now;
  drawn_ = true;
}

}  // namespace tp_mlp
