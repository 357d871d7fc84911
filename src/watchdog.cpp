// watchdog: the thread that ends a job whose main thread waits too long (see watchdog.hpp).
#include "tp_mlp/watchdog.hpp"

#include <chrono>
#include <cstdio>
#include <string>

#include "tp_mlp/comm.hpp"
#include "tp_mlp/exit_codes.hpp"

namespace tp_mlp {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kCheckEvery{200};
// Ranks other than 0 wait this much longer, so that rank 0, if it is alive, speaks alone.
constexpr double kGraceSeconds = 2;
// A check that comes this late means the process itself was stopped or starved: whatever it
// was waiting for may have arrived meanwhile, so the wait's clock starts again.
constexpr milliseconds kStalled{2000};

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

}  // namespace

Watchdog::Watchdog(int rank) : rank_(rank), timeout_s_(kDefaultTimeoutSeconds) {
  thread_ = std::thread([this] { watch(); });
}

Watchdog::~Watchdog() {
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void Watchdog::set_timeout(double seconds) { timeout_s_ = seconds; }

Watchdog::Wait::Wait(Watchdog& dog, const char* what, long bytes) : dog_(dog) {
  dog_.what_ = what;
  dog_.bytes_ = bytes;
  dog_.since_ns_ = now_ns();
}

Watchdog::Wait::~Wait() { dog_.since_ns_ = 0; }

void Watchdog::watch() {
  std::unique_lock<std::mutex> lock(mutex_);
  auto last = Clock::now();
  while (!wake_.wait_for(lock, kCheckEvery, [this] { return stopping_; })) {
    const auto now = Clock::now();
    const bool stalled = now - last > kStalled;
    last = now;
    std::int64_t since = since_ns_;
    if (since == 0) continue;
    if (stalled) {  // this process was not running: the others get a fresh timeout
      since_ns_.compare_exchange_strong(since, now_ns());
      continue;
    }
    const double waited = double(now_ns() - since) * 1e-9;
    const double allowed = timeout_s_ + (rank_ == 0 ? 0 : kGraceSeconds);
    if (waited <= allowed) continue;
    const long bytes = bytes_;
    char message[512];
    std::snprintf(message, sizeof message,
                  "no progress for %.0f s in %s%s%s: another rank has stopped responding "
                  "(stopped, swapped out, or cut off); ending the job (--timeout %g)",
                  waited, what_.load(), bytes > 0 ? " of " : "",
                  bytes > 0 ? (std::to_string(bytes) + " bytes").c_str() : "", timeout_s_.load());
    end_job(kExitTimeout, rank_, message);
  }
}

}  // namespace tp_mlp
