// comm: MPI behind three small classes; see comm.hpp for the data plane / control plane split.
#include "tp_mlp/comm.hpp"

#include <mpi.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <utility>

#include <sched.h>

#include "tp_mlp/exit_codes.hpp"
#include "tp_mlp/library_scope.hpp"
#include "tp_mlp/partition.hpp"

namespace tp_mlp {
namespace {

void mpi_check(int status, const char* call, const char* file, int line) {
  if (status == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(status, text, &length);
  int rank = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  end_job(kExitMpiError, rank,
          std::string(call) + " failed at " + file + ":" + std::to_string(line) + ": " + text);
}

// Every MPI call: checked, and known to be inside the library (its allocations are its own).
#define mpiCheck(call)                            \
  do {                                            \
    const LibraryScope library_call;              \
    mpi_check((call), #call, __FILE__, __LINE__); \
  } while (false)

constexpr const char* kRecursiveDoubling = "4";  // ompi_info --param coll libnbc --level 9

MpiSession* session = nullptr;  // the one MpiSession, while it lives
// Set once MPI_Finalize begins: MPI_Abort may then fail (MPICH: "Invalid communicator").
std::atomic<bool> finalising{false};

}  // namespace

MpiSession::MpiSession(int* argc, char*** argv) {
  // Open MPI's non-blocking all-reduce (libnbc) takes, for fewer than 4 ranks or in place,
  // a binomial reduce then a broadcast: every byte crosses the link twice, one way at a time.
  // Recursive doubling exchanges once, both ways at once: measured at 1 Gbit/s between two
  // hosts, megatron-overlap's forward 62 ms against 69-72 (megatron's: 80). A default only:
  // `mpirun --mca coll_libnbc_iallreduce_algorithm N` still decides. Other MPIs ignore it.
  setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", kRecursiveDoubling, /*overwrite=*/0);
  int provided = 0;
  MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  watchdog_ = std::make_unique<Watchdog>(rank);
  session = this;
}

MpiSession::~MpiSession() {
  {
    // The finalisation waits for every rank: one that stopped after its last collective
    // would hold the others here forever.
    const Watchdog::Wait wait(*watchdog_, "the finalisation (MPI_Finalize)");
    finalising = true;
    MPI_Finalize();
  }
  session = nullptr;
}

MpiSession& MpiSession::current() {
  if (!session) throw std::logic_error("MPI is used before an MpiSession exists");
  return *session;
}

void end_job(int status, int rank, const std::string& message) {
  // Measured with MPICH's hydra: without the pause 1 run in 8 lost the message, with it 0 in 12.
  constexpr std::chrono::milliseconds kLetTheLauncherForward{200};
  std::fprintf(stderr, "tp_mlp: rank %d: %s\n", rank, message.c_str());
  std::fflush(stderr);
  std::this_thread::sleep_for(kLetTheLauncherForward);
  // Inside MPI_Finalize, this rank's own exit: both launchers end a job whose rank exits
  // non-zero, and the communicator MPI_Abort needs may already be gone.
  if (finalising) std::_Exit(status);
  MPI_Abort(MPI_COMM_WORLD, status);
  std::abort();  // MPI_Abort should not return; if it does, this rank must not go on
}

int mpi_count(long count) {
  if (count < 0 || count > INT_MAX)
    throw std::length_error("a collective of " + std::to_string(count) +
                            " elements does not fit MPI's int count");
  return static_cast<int>(count);
}

World::World() : watchdog_(MpiSession::current().watchdog()) {
  // Errors come back to mpi_check, which names the call before aborting.
  mpiCheck(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  mpiCheck(MPI_Comm_rank(MPI_COMM_WORLD, &rank_));
  mpiCheck(MPI_Comm_size(MPI_COMM_WORLD, &size_));
  const Watchdog::Wait wait(watchdog_, "the start-up's node census");
  MPI_Comm node;
  mpiCheck(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
  mpiCheck(MPI_Comm_size(node, &ranks_on_node_));
  // The node's usable CPUs: the union of its ranks' affinity masks (a cpuset or the
  // launcher's binding may allow fewer than the machine has).
  cpu_set_t mine;
  CPU_ZERO(&mine);
  sched_getaffinity(0, sizeof mine, &mine);
  std::array<std::uint64_t, CPU_SETSIZE / 64> mask{}, node_mask{};
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
    if (CPU_ISSET(cpu, &mine)) mask[std::size_t(cpu / 64)] |= std::uint64_t{1} << (cpu % 64);
  mpiCheck(
      MPI_Allreduce(mask.data(), node_mask.data(), int(mask.size()), MPI_UINT64_T, MPI_BOR, node));
  mpiCheck(MPI_Comm_free(&node));
  cores_on_node_ = 0;
  for (std::uint64_t word : node_mask) cores_on_node_ += __builtin_popcountll(word);
  int crowded = ranks_on_node_ > cores_on_node_ ? 1 : 0, anywhere = 0;
  mpiCheck(MPI_Allreduce(&crowded, &anywhere, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
  oversubscribed_ = anywhere != 0;
}

namespace {

// What a launcher says about the job it started: Open MPI's mpirun, and the PMI launchers
// (MPICH's Hydra, Slurm's srun), each in its own variables.
struct LauncherJob {
  const char* name;
  const char* size_variable;
  const char* rank_variable;
};
constexpr LauncherJob kLaunchers[] = {
    {"Open MPI's mpirun", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"},
    {"a PMI launcher (MPICH's mpiexec, srun)", "PMI_SIZE", "PMI_RANK"}};

// "Open MPI" or "MPICH": the MPI this binary is linked with, as its library names itself.
std::string mpi_library() {
  char version[MPI_MAX_LIBRARY_VERSION_STRING];
  int length = 0;
  MPI_Get_library_version(version, &length);
  const std::string text(version, std::size_t(length));
  for (const char* name : {"Open MPI", "MPICH"})
    if (text.find(name) != std::string::npos) return name;
  return text.substr(0, text.find('\n'));
}

long environment_number(const char* name) {
  const char* text = std::getenv(name);
  return text ? std::strtol(text, nullptr, 10) : -1;
}

}  // namespace

std::string World::launcher_mismatch() const {
  for (const LauncherJob& launcher : kLaunchers) {
    const long started = environment_number(launcher.size_variable);
    if (started <= size_) continue;
    return std::string(launcher.name) + " started " + std::to_string(started) + " processes (" +
           launcher.size_variable + "=" + std::to_string(started) +
           "), but each is an MPI world of " + std::to_string(size_) +
           ": this tp_mlp is built "
           "with " +
           mpi_library() + ", so start it with that MPI's own launcher (its mpirun or mpiexec)";
  }
  return "";
}

bool World::launchers_first() const {
  for (const LauncherJob& launcher : kLaunchers) {
    const long rank = environment_number(launcher.rank_variable);
    if (rank >= 0) return rank == 0;
  }
  return is_root();
}

int World::lowest_rank_where(bool condition) const {
  const Watchdog::Wait wait(watchdog_, "the agreement on the verdict");
  int mine = condition ? rank_ : INT_MAX;
  int lowest = INT_MAX;
  mpiCheck(MPI_Allreduce(&mine, &lowest, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
  return lowest == INT_MAX ? -1 : lowest;
}

double World::max(double local) const {
  const Watchdog::Wait wait(watchdog_, "a reduction of results");
  double result = 0;
  mpiCheck(MPI_Allreduce(&local, &result, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD));
  return result;
}

void World::max_in_place(std::vector<double>& values) const {
  const Watchdog::Wait wait(watchdog_, "a reduction of timings");
  mpiCheck(MPI_Allreduce(MPI_IN_PLACE, values.data(), mpi_count(long(values.size())), MPI_DOUBLE,
                         MPI_MAX, MPI_COMM_WORLD));
}

void World::sum_in_place(std::vector<double>& values) const {
  const Watchdog::Wait wait(watchdog_, "a reduction of timings");
  mpiCheck(MPI_Allreduce(MPI_IN_PLACE, values.data(), mpi_count(long(values.size())), MPI_DOUBLE,
                         MPI_SUM, MPI_COMM_WORLD));
}

void World::barrier() const {
  const Watchdog::Wait wait(watchdog_, "a barrier");
  mpiCheck(MPI_Barrier(MPI_COMM_WORLD));
}

void World::wait_idle() const {
  const Watchdog::Wait wait(watchdog_, "a barrier (waiting while another rank works alone)");
  constexpr timespec kNap = {0, 1000000};  // 1 ms: far below any timing that matters here
  MPI_Request request;
  mpiCheck(MPI_Ibarrier(MPI_COMM_WORLD, &request));
  for (int done = 0;;) {
    mpiCheck(MPI_Test(&request, &done, MPI_STATUS_IGNORE));
    if (done) return;
    nanosleep(&kNap, nullptr);
  }
}

void World::broadcast_from_root(float* data, long count) const {
  const Watchdog::Wait wait(watchdog_, "a broadcast", count * long(sizeof(float)));
  mpiCheck(MPI_Bcast(data, mpi_count(count), MPI_FLOAT, 0, MPI_COMM_WORLD));
}

void World::gather_to_root(const float* mine, long count, float* all, long capacity) const {
  gather(mine, count, all, capacity);
}

void World::gather_to_root(const long* mine, long count, std::vector<long>& all) const {
  all.resize(is_root() ? std::size_t(count) * std::size_t(size_) : 0);
  gather(mine, count, all.data(), long(all.size()));
}

std::vector<std::uint64_t> World::all_gather(std::uint64_t mine) const {
  const Watchdog::Wait wait(watchdog_, "a gather of digests");
  std::vector<std::uint64_t> all(static_cast<std::size_t>(size_));
  mpiCheck(MPI_Allgather(&mine, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, MPI_COMM_WORLD));
  return all;
}

double World::node_sum(double local) const {
  const Watchdog::Wait wait(watchdog_, "a sum over the node");
  MPI_Comm node;
  mpiCheck(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
  double sum = 0;
  mpiCheck(MPI_Allreduce(&local, &sum, 1, MPI_DOUBLE, MPI_SUM, node));
  mpiCheck(MPI_Comm_free(&node));
  return sum;
}

void World::abort(const std::string& message) const { end_job(kExitRankFailed, rank_, message); }

namespace {

// MPI's view of an element type: its datatype, and the sum of two arrays of it. MPI has no bf16:
// its 16 bits travel as MPI_UINT16_T, and a user-defined (commutative) operation adds them in
// fp32 and rounds the sum to bf16, the same rounding on every rank.
template <typename T>
struct MpiType;
template <>
struct MpiType<float> {
  static MPI_Datatype type() { return MPI_FLOAT; }
};
template <>
struct MpiType<bfloat16> {
  static MPI_Datatype type() { return MPI_UINT16_T; }
};
template <>
struct MpiType<std::int64_t> {
  static MPI_Datatype type() { return MPI_INT64_T; }
};

void add_bf16_arrays(void* in, void* inout, int* length, MPI_Datatype*) {
  add_bf16(static_cast<const std::uint16_t*>(in), static_cast<std::uint16_t*>(inout), *length);
}

}  // namespace

template <typename T>
void World::gather(const T* mine, long count, T* all, long capacity) const {
  const Watchdog::Wait wait(watchdog_, "a gather of saved tensors", count * long(sizeof(T)));
  const MPI_Datatype type = MpiType<T>::type();
  const int my_count = mpi_count(count);
  std::vector<int> counts(is_root() ? std::size_t(size_) : 0), offsets(counts.size());
  mpiCheck(MPI_Gather(&my_count, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, MPI_COMM_WORLD));
  long total = 0;
  for (std::size_t r = 0; r < counts.size(); ++r) {
    offsets[r] = mpi_count(total);
    total += counts[r];
  }
  if (total > capacity) throw std::logic_error("a gather larger than its buffer");
  mpiCheck(MPI_Gatherv(mine, my_count, type, all, counts.data(), offsets.data(), type, 0,
                       MPI_COMM_WORLD));
}

// The group's communicator, the bf16 sum, the requests in flight and the per-rank counts of the
// `v` collectives, allocated once: no allocation in a pass.
struct TpComm::Mpi {
  MPI_Comm comm = MPI_COMM_NULL;
  MPI_Op bf16_sum = MPI_OP_NULL;
  std::vector<int> counts, offsets;  // [T]
  std::array<MPI_Request, kMaxCollectivesInFlight> in_flight{};
  int started = 0;
  ~Mpi() {
    if (bf16_sum != MPI_OP_NULL) MPI_Op_free(&bf16_sum);
    if (comm != MPI_COMM_NULL) MPI_Comm_free(&comm);
  }
  template <typename T>
  MPI_Op sum() const {
    return std::is_same_v<T, bfloat16> ? bf16_sum : MPI_SUM;
  }
};

TpComm::TpComm(Watchdog& watchdog) : watchdog_(&watchdog) {}

TpComm::TpComm(const World& world, int tp_size)
    : watchdog_(&world.watchdog()), mpi_(std::make_unique<Mpi>()) {
  const Watchdog::Wait wait(*watchdog_, "the split into TP groups");
  const int group = world.rank() / tp_size;
  mpiCheck(MPI_Comm_split(MPI_COMM_WORLD, group, world.rank(), &mpi_->comm));
  mpiCheck(MPI_Comm_set_errhandler(mpi_->comm, MPI_ERRORS_RETURN));
  mpiCheck(MPI_Comm_rank(mpi_->comm, &rank_));
  mpiCheck(MPI_Comm_size(mpi_->comm, &size_));
  mpiCheck(MPI_Op_create(&add_bf16_arrays, /*commute=*/1, &mpi_->bf16_sum));
  mpi_->counts.resize(std::size_t(size_));
  mpi_->offsets.resize(std::size_t(size_));
}

TpComm TpComm::group_of_one(const World& world) { return TpComm(world.watchdog()); }

TpComm::TpComm(TpComm&& other) noexcept = default;
TpComm::~TpComm() = default;

bool TpComm::uneven_blocks(long rows, long row_length) {
  if (rows % size_ == 0) return false;
  for (int r = 0; r < size_; ++r) {
    const Block block = block_of(rows, size_, r);
    mpi_->counts[std::size_t(r)] = mpi_count(block.count * row_length);
    mpi_->offsets[std::size_t(r)] = mpi_count(block.first * row_length);
  }
  return true;
}

template <typename T>
void TpComm::all_reduce_sum(T* data, long count) {
  if (alone()) return;
  const Watchdog::Wait wait(*watchdog_, "an all-reduce", count * long(sizeof(T)));
  const double start = MPI_Wtime();
  mpiCheck(MPI_Allreduce(MPI_IN_PLACE, data, mpi_count(count), MpiType<T>::type(),
                         mpi_->template sum<T>(), mpi_->comm));
  tally(Collective::all_reduce, start, count, sizeof(T));
}

void TpComm::all_reduce_max(float* data, long count) {
  if (alone()) return;
  const Watchdog::Wait wait(*watchdog_, "an all-reduce", count * long(sizeof(float)));
  const double start = MPI_Wtime();
  mpiCheck(MPI_Allreduce(MPI_IN_PLACE, data, mpi_count(count), MPI_FLOAT, MPI_MAX, mpi_->comm));
  tally(Collective::all_reduce, start, count, sizeof(float));
}

template <typename T>
void TpComm::all_gather_rows(const T* local, T* full, long rows, long row_length) {
  const long elements = rows * row_length;
  if (alone()) {  // the whole tensor is this rank's block
    std::copy(local, local + elements, full);
    return;
  }
  const Watchdog::Wait wait(*watchdog_, "an all-gather", elements * long(sizeof(T)));
  const double start = MPI_Wtime();
  const MPI_Datatype type = MpiType<T>::type();
  if (uneven_blocks(rows, row_length)) {
    mpiCheck(MPI_Allgatherv(local, mpi_->counts[std::size_t(rank_)], type, full,
                            mpi_->counts.data(), mpi_->offsets.data(), type, mpi_->comm));
  } else {
    const int count = mpi_count(elements / size_);
    mpiCheck(MPI_Allgather(local, count, type, full, count, type, mpi_->comm));
  }
  tally(Collective::all_gather, start, elements, sizeof(T));
}

template <typename T>
void TpComm::reduce_scatter_rows(const T* full, T* local, long rows, long row_length) {
  const long elements = rows * row_length;
  if (alone()) {
    std::copy(full, full + elements, local);
    return;
  }
  const Watchdog::Wait wait(*watchdog_, "a reduce-scatter", elements * long(sizeof(T)));
  const double start = MPI_Wtime();
  const MPI_Datatype type = MpiType<T>::type();
  const MPI_Op sum = mpi_->template sum<T>();
  if (uneven_blocks(rows, row_length)) {
    mpiCheck(MPI_Reduce_scatter(full, local, mpi_->counts.data(), type, sum, mpi_->comm));
  } else {
    mpiCheck(
        MPI_Reduce_scatter_block(full, local, mpi_count(elements / size_), type, sum, mpi_->comm));
  }
  tally(Collective::reduce_scatter, start, elements, sizeof(T));
}

template <typename T>
void TpComm::start_all_reduce_sum(T* data, long count) {
  if (alone()) return;
  if (mpi_->started == kMaxCollectivesInFlight)
    throw std::logic_error("too many collectives in flight");
  const double start = MPI_Wtime();
  mpiCheck(MPI_Iallreduce(MPI_IN_PLACE, data, mpi_count(count), MpiType<T>::type(),
                          mpi_->template sum<T>(), mpi_->comm,
                          &mpi_->in_flight[std::size_t(mpi_->started++)]));
  tally(Collective::all_reduce, start, count, sizeof(T));
}

void TpComm::progress() {
  if (alone() || mpi_->started == 0) return;
  const double start = MPI_Wtime();
  int done = 0;
  mpiCheck(MPI_Testall(mpi_->started, mpi_->in_flight.data(), &done, MPI_STATUSES_IGNORE));
  stats_[Collective::all_reduce].seconds += MPI_Wtime() - start;
}

void TpComm::finish_all() {
  if (alone() || mpi_->started == 0) return;
  const Watchdog::Wait wait(*watchdog_, "an overlapped all-reduce");
  const double start = MPI_Wtime();
  mpiCheck(MPI_Waitall(mpi_->started, mpi_->in_flight.data(), MPI_STATUSES_IGNORE));
  stats_[Collective::all_reduce].seconds += MPI_Wtime() - start;
  mpi_->started = 0;
}

template void TpComm::start_all_reduce_sum(float*, long);
template void TpComm::start_all_reduce_sum(bfloat16*, long);
template void TpComm::start_all_reduce_sum(std::int64_t*, long);
template void TpComm::all_reduce_sum(float*, long);
template void TpComm::all_reduce_sum(bfloat16*, long);
template void TpComm::all_reduce_sum(std::int64_t*, long);
template void TpComm::all_gather_rows(const float*, float*, long, long);
template void TpComm::all_gather_rows(const bfloat16*, bfloat16*, long, long);
template void TpComm::all_gather_rows(const std::int64_t*, std::int64_t*, long, long);
template void TpComm::reduce_scatter_rows(const float*, float*, long, long);
template void TpComm::reduce_scatter_rows(const bfloat16*, bfloat16*, long, long);
template void TpComm::reduce_scatter_rows(const std::int64_t*, std::int64_t*, long, long);

void TpComm::tally(Collective kind, double start, long tensor_elements, std::size_t element_bytes) {
  stats_.add({kind, tensor_elements, 1, long(element_bytes)}, MPI_Wtime() - start);
}

}  // namespace tp_mlp
