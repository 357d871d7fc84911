// watchdog: part of the communication layer. A rank that stops responding (stopped, swapped
// out, stuck behind a dead link) would leave every other rank waiting in its collective
// forever; like PyTorch's process groups, a thread beside the main one ends the whole job when
// the main thread has waited in one MPI call longer than --timeout, and names the call.
//
// The main thread only stamps atomics when it enters and leaves a wait, a few nanoseconds;
// the watchdog wakes a few times a second. World rank 0 speaks first: the others give it a
// grace period, so that one message, not one per rank, says what happened.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

namespace tp_mlp {

// How long a rank may wait in one MPI call before the job is ended, until --timeout says.
inline constexpr int kDefaultTimeoutSeconds = 600;

class Watchdog {
 public:
  explicit Watchdog(int rank);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  void set_timeout(double seconds);
  double timeout() const { return timeout_s_; }

  // A wait in one MPI call that only other ranks can end, for the lifetime of this object.
  class Wait {
   public:
    // `what` names the call for people, with its article: "an all-reduce", "a barrier".
    Wait(Watchdog& dog, const char* what, long bytes = 0);
    ~Wait();
    Wait(const Wait&) = delete;
    Wait& operator=(const Wait&) = delete;

   private:
    Watchdog& dog_;
  };

 private:
  void watch();

  const int rank_;
  std::atomic<double> timeout_s_;
  std::atomic<std::int64_t> since_ns_{0};  // when the current wait began; 0: not waiting
  std::atomic<const char*> what_{""};
  std::atomic<long> bytes_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace tp_mlp
