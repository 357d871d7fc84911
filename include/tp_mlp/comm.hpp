// comm: the only part of the program that calls MPI. Its header names no MPI type, so nothing
// else can (a test compiles every public header with no MPI on the include path).
//
// Two kinds of traffic, kept apart so that the numbers the program reports are honest:
//  - the data plane, TpComm: the collectives the tensor-parallel model itself needs. Each
//    call is counted (calls, bytes, seconds spent inside), like PyTorch's CommDebugMode,
//    so COMMUNICATION ANALYSIS prints what the model did, not what a formula says.
//  - the control plane, World: agreeing on errors, barriers, gathering timings. Never
//    counted, because a real model would not do it.
// Every MPI call is checked and watched (watchdog.hpp); an error or a rank that stops
// responding ends the whole job with a message, because a rank that gives up alone leaves
// the others waiting forever.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tp_mlp/bf16.hpp"
#include "tp_mlp/collective.hpp"
#include "tp_mlp/watchdog.hpp"

namespace tp_mlp {

// MPI_Init for the lifetime of this object, and the watchdog that watches every MPI call from
// then on, MPI_Finalize included: a rank stopped after its last collective would otherwise
// hang the job in the finalisation. Threads may call MPI (the watchdog's abort does).
class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  // The session of this process: there is one.
  static MpiSession& current();
  Watchdog& watchdog() { return *watchdog_; }

 private:
  std::unique_ptr<Watchdog> watchdog_;
};

// Prints "tp_mlp: rank R: message" on stderr, gives the launcher a moment to forward it (MPICH's
// launcher was seen to drop a message written just before the abort), then ends every rank of
// the job with `status` (exit_codes.hpp) through MPI_Abort, or, once MPI_Finalize has begun,
// by exiting with it (the launcher then ends the rest). The one way a rank ends the job.
[[noreturn]] void end_job(int status, int rank, const std::string& message);

// MPI counts are int: a count that does not fit is an error at the call, not a wrap-around.
int mpi_count(long count);

class World {
 public:
  World();  // of the current MpiSession
  int rank() const { return rank_; }
  int size() const { return size_; }
  bool is_root() const { return rank_ == 0; }
  int ranks_on_this_node() const { return ranks_on_node_; }
  // CPUs the ranks on this node may run on (the union of their affinity masks).
  int cores_on_this_node() const { return cores_on_node_; }
  // On some node, more ranks than cores: they time-share, and timings show it.
  bool oversubscribed() const { return oversubscribed_; }

  // Empty, or why this world is not the job the launcher started: a launcher of another MPI
  // (MPICH's mpiexec starting an Open MPI build, say) makes every process a world of one.
  std::string launcher_mismatch() const;
  // Whether this process is the launcher's rank 0: among worlds of one, the one to speak.
  bool launchers_first() const;

  // The lowest rank for which `condition` holds, or -1. Every rank must call it, which is
  // how a failure seen by one rank reaches all of them without a hang.
  int lowest_rank_where(bool condition) const;
  double max(double local) const;
  double node_sum(double local) const;  // over the ranks on this rank's node
  // Every rank's value, in rank order, on every rank.
  std::vector<std::uint64_t> all_gather(std::uint64_t mine) const;
  void max_in_place(std::vector<double>& values) const;  // element-wise over ranks
  void sum_in_place(std::vector<double>& values) const;
  void barrier() const;
  // A barrier that sleeps instead of spinning, so that ranks with nothing to do leave the
  // cores to a rank that is being timed alone.
  void wait_idle() const;
  void broadcast_from_root(float* data, long count) const;
  // Every rank's `count` floats, concatenated in rank order into `all` on rank 0, which holds
  // `capacity` of them (unused elsewhere): for writing files, never for the model.
  void gather_to_root(const float* mine, long count, float* all, long capacity) const;
  // Every rank's `count` numbers, concatenated in rank order into `all` on rank 0 (resized
  // there; left alone elsewhere).
  void gather_to_root(const long* mine, long count, std::vector<long>& all) const;
  [[noreturn]] void abort(const std::string& message) const;

  // The longest any wait in MPI may take before the job is ended (--timeout).
  void set_timeout(double seconds) const { watchdog_.set_timeout(seconds); }
  Watchdog& watchdog() const { return watchdog_; }

 private:
  template <typename T>
  void gather(const T* mine, long count, T* all, long capacity) const;

  Watchdog& watchdog_;
  int rank_ = 0;
  int size_ = 1;
  int ranks_on_node_ = 1;
  int cores_on_node_ = 1;
  bool oversubscribed_ = false;
};

class TpComm {
 public:
  // Groups of tp_size consecutive world ranks, like the script's tp_group; the world size
  // must be a multiple of tp_size (validated before this is built).
  TpComm(const World& world, int tp_size);
  // The serial baseline's group: this rank alone, with nobody to talk to, so every
  // collective returns at once and nothing is counted (Megatron-LM bypasses its collectives
  // the same way when the tensor-parallel group has one rank).
  static TpComm group_of_one(const World& world);
  ~TpComm();
  TpComm(TpComm&& other) noexcept;
  TpComm(const TpComm&) = delete;
  TpComm& operator=(const TpComm&) = delete;
  TpComm& operator=(TpComm&&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }

  // For T = float, bf16 (whose sums round to bf16 at every addition, as a bf16 all-reduce
  // does) or std::int64_t (whose sums are exact and so independent of their order); the bytes
  // counted are the element's:
  // In place: every rank's `count` elements are replaced by their sum over the group.
  template <typename T>
  void all_reduce_sum(T* data, long count);
  // In place: every rank's `count` elements are replaced by their maximum over the group.
  void all_reduce_max(float* data, long count);
  // full [rows, row_length] = every rank's block of the rows (partition.hpp), in rank order.
  template <typename T>
  void all_gather_rows(const T* local, T* full, long rows, long row_length);
  // local = this rank's block of the rows of the sum over ranks of full [rows, row_length].
  template <typename T>
  void reduce_scatter_rows(const T* full, T* local, long rows, long row_length);

  // All-reduces that overlap computation: start one (in place, like all_reduce_sum), let it
  // progress while the rank computes by calling progress() now and then (Open MPI moves data
  // only inside MPI calls), then finish all of them. The time counted is the time spent in
  // these calls: what the overlap did not hide.
  template <typename T>
  void start_all_reduce_sum(T* data, long count);
  void progress();
  void finish_all();

  const CommStats& stats() const { return stats_; }
  void reset_stats() { stats_ = {}; }

 private:
  struct Mpi;  // the communicator, operations and requests, in comm.cpp
  explicit TpComm(Watchdog& watchdog);
  bool alone() const { return size_ == 1 && !mpi_; }
  // MPI's per-rank counts and offsets, in elements, for blocks of `rows` rows; false when the
  // blocks are equal, and MPI's fixed-size collectives serve.
  bool uneven_blocks(long rows, long row_length);
  void tally(Collective kind, double start, long tensor_elements, std::size_t element_bytes);

  Watchdog* watchdog_;
  std::unique_ptr<Mpi> mpi_;  // none for a group of one
  int rank_ = 0;
  int size_ = 1;
  CommStats stats_;
};

}  // namespace tp_mlp
