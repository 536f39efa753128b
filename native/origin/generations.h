// Source generations: purge and a revalidation that finds a new file bump the
// generation of a source (workspace, id). A flight notes the generation when
// it starts and stores what it made only if the generation is still the same
// after the write (else it erases it again), so a variant made from an older
// source is never kept, however the purge and the flight interleave:
//   purge:  bump, then erase      flight: write, then re-check (erase if bumped)
// Either the flight's re-check sees the bump, or its write happened before the
// re-check and so before the purge's erase. Bounded: a fixed array of
// counters by hash; two sources sharing a slot only cost a skipped store.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <string_view>

namespace nic::origin {

class Generations {
 public:
  static constexpr std::size_t kSlots = 4096;

  std::uint64_t current(std::string_view source_key) const {
    return slots_[slot(source_key)].load(std::memory_order_acquire);
  }
  std::uint64_t bump(std::string_view source_key) {
    return slots_[slot(source_key)].fetch_add(1, std::memory_order_acq_rel) + 1;
  }

 private:
  static std::size_t slot(std::string_view key) { return std::hash<std::string_view>{}(key) % kSlots; }
  std::array<std::atomic<std::uint64_t>, kSlots> slots_{};
};

}  // namespace nic::origin
