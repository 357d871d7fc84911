// workspace: the one place a rank's memory comes from, planned before any of it is allocated.
//
// Every part of a run (the schemes and their GEMM plans, the inputs, the reference, the replayed
// collectives) takes its buffers and its objects from a Workspace in its constructor, and from
// nowhere else. A run is built twice on the same code: first on a planning workspace, which
// hands out null buffers, constructs objects on the side and only adds up what they take, then,
// once the total has passed the memory check, on a real one, one allocation of exactly that total.
// So the estimate the program refuses by is what it allocates, by construction, and no part
// keeps an account of its own that could drift from its code.
//
// Memory is handed out like a stack: mark() and release() return what was taken since the mark
// (a part built only to be measured, say), and the plan is the high-water mark. Scratch is
// memory that whatever runs one at a time may share (a GEMM's scratchpad): the largest request,
// once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <utility>

#include "tp_mlp/matrix.hpp"

namespace tp_mlp {

// What a run needs, from the planning workspace: the real one is made from it.
struct WorkspacePlan {
  std::size_t bytes = 0;    // the high-water mark of the stack, objects included
  std::size_t scratch = 0;  // the largest scratch request
  std::size_t total() const { return bytes + scratch; }
};

class Workspace {
 public:
  static constexpr std::size_t kAlignment = 64;  // a cache line, and any vector's alignment
  static constexpr std::uintptr_t kNowhere = kAlignment;

  Workspace();                             // planning: allocates no buffer
  explicit Workspace(WorkspacePlan plan);  // real: one allocation of plan.total()
  ~Workspace();  // destroys what it constructed, in reverse order, then frees its memory
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;

  bool planning() const { return arena_ == nullptr; }

  // While planning, every buffer is here: an address in the first page, which no process maps,
  // so that views into a buffer can be taken (a plan needs layouts, not data) and a read or a
  // write faults at once. Also the data of a matrix that only describes a layout.
  template <typename T>
  static T* nowhere() {
    return reinterpret_cast<T*>(kNowhere);  // NOLINT(performance-no-int-to-ptr)
  }
  WorkspacePlan plan() const { return {high_water_, scratch_}; }

  // `bytes` of raw memory, aligned; nowhere() while planning.
  void* take(std::size_t bytes);
  // A [rows, cols] row-major matrix of T; its data is nowhere() while planning.
  template <typename T>
  Tensor<T> matrix(long rows, long cols) {
    const std::size_t n = std::size_t(rows) * std::size_t(cols);
    return Tensor<T>(static_cast<T*>(take(n * sizeof(T))), rows, cols);
  }
  // `bytes` that only one user at a time touches: the same memory for every request.
  void* scratch(std::size_t bytes);

  // An X constructed in the workspace (on the heap while planning, counted as if it were not),
  // destroyed with it or at the release of an earlier mark.
  template <typename X, typename... Args>
  X& make(Args&&... args) {
    static_assert(alignof(X) <= alignof(Record), "an object is placed right after its record");
    Record& record = new_record(sizeof(X));
    X* object = nullptr;
    try {
      object = new (&record + 1) X(std::forward<Args>(args)...);
    } catch (...) {
      abandon(record);
      throw;
    }
    record.destroy = [](void* p) { static_cast<X*>(p)->~X(); };
    record.object = object;
    link(record);
    return *object;
  }

  struct Mark {
    std::size_t used;
    void* objects;
  };
  Mark mark() const { return {used_, objects_}; }
  void release(Mark mark);  // destroys what was made since, and hands its memory out again

 private:
  struct alignas(16) Record {  // in front of each object made here, newest first
    void (*destroy)(void*) = nullptr;
    void* object = nullptr;
    Record* previous = nullptr;
    bool on_heap = false;  // made while planning
  };
  Record& new_record(std::size_t object_bytes);  // with room for the object after it
  void link(Record& record);
  void abandon(Record& record) noexcept;  // its object was never made
  void destroy_down_to(void* objects);

  std::byte* arena_ = nullptr;  // scratch_ bytes of scratch, then the stack
  std::size_t capacity_ = 0;
  std::size_t used_ = 0;  // of the stack
  std::size_t high_water_ = 0;
  std::size_t scratch_ = 0;
  Record* objects_ = nullptr;
};

// Marks the workspace on construction and releases it on destruction.
class WorkspaceScope {
 public:
  explicit WorkspaceScope(Workspace& ws) : ws_(ws), mark_(ws.mark()) {}
  ~WorkspaceScope() { ws_.release(mark_); }
  WorkspaceScope(const WorkspaceScope&) = delete;
  WorkspaceScope& operator=(const WorkspaceScope&) = delete;

 private:
  Workspace& ws_;
  Workspace::Mark mark_;
};

}  // namespace tp_mlp
