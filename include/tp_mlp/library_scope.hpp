// library_scope: marks the stretches of a thread's work that happen inside a library (oneDNN
// building or running a primitive, MPI moving data), so that an allocation made there is known
// to be the library's own. The program allocates its tensors from one workspace
// (workspace.hpp) and nothing in a pass; a test that counts allocations asks open() to tell
// the library's from ours, and holds ours to that.
#pragma once

namespace tp_mlp {

class LibraryScope {
 public:
  LibraryScope() { ++depth(); }
  ~LibraryScope() { --depth(); }
  LibraryScope(const LibraryScope&) = delete;
  LibraryScope& operator=(const LibraryScope&) = delete;
  static bool open() { return depth() > 0; }

 private:
  static int& depth() {
    thread_local int open_scopes = 0;
    return open_scopes;
  }
};

}  // namespace tp_mlp
