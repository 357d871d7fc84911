// workspace: a stack in one allocation, or, while planning, only its arithmetic (workspace.hpp).
#include "tp_mlp/workspace.hpp"

#include <algorithm>
#include <cstdlib>
#include <stdexcept>

namespace tp_mlp {
namespace {

std::size_t aligned(std::size_t bytes) {
  return (bytes + Workspace::kAlignment - 1) / Workspace::kAlignment * Workspace::kAlignment;
}

}  // namespace

Workspace::Workspace() = default;

Workspace::Workspace(WorkspacePlan plan)
    : capacity_(aligned(plan.scratch) + plan.bytes), scratch_(aligned(plan.scratch)) {
  // One allocation; at least a line, so that a run with no tensors still has an arena and is
  // not taken for a plan.
  arena_ = static_cast<std::byte*>(std::aligned_alloc(kAlignment, std::max(capacity_, kAlignment)));
  if (!arena_) throw std::bad_alloc();
}

Workspace::~Workspace() {
  destroy_down_to(nullptr);
  std::free(arena_);
}

void* Workspace::take(std::size_t bytes) {
  const std::size_t start = used_;
  used_ += aligned(bytes);
  high_water_ = std::max(high_water_, used_);
  if (planning()) return nowhere<void>();
  if (scratch_ + used_ > capacity_)
    throw std::logic_error("the workspace is asked for more than was planned");
  return arena_ + scratch_ + start;
}

void* Workspace::scratch(std::size_t bytes) {
  if (planning()) {
    scratch_ = std::max(scratch_, aligned(bytes));
    return nowhere<void>();
  }
  if (aligned(bytes) > scratch_)
    throw std::logic_error("a scratch request larger than was planned");
  return arena_;
}

Workspace::Record& Workspace::new_record(std::size_t object_bytes) {
  const std::size_t bytes = sizeof(Record) + object_bytes;
  void* memory = take(bytes);
  const bool on_heap = planning();  // counted above as if in the arena, until the plan is done
  if (on_heap) memory = std::aligned_alloc(alignof(Record), aligned(bytes));
  if (!memory) throw std::bad_alloc();
  Record* record = new (memory) Record;
  record->on_heap = on_heap;
  return *record;
}

void Workspace::link(Record& record) {
  record.previous = objects_;
  objects_ = &record;
}

void Workspace::abandon(Record& record) noexcept {
  if (record.on_heap) std::free(&record);
}

void Workspace::destroy_down_to(void* objects) {
  while (objects_ && objects_ != objects) {
    Record* record = objects_;
    objects_ = record->previous;
    record->destroy(record->object);
    if (record->on_heap) std::free(record);
  }
}

void Workspace::release(Mark mark) {
  destroy_down_to(mark.objects);
  used_ = mark.used;
}

}  // namespace tp_mlp
