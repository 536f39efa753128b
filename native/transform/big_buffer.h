// Internal to the transform engine: a large scratch buffer in transparent
// huge pages where the kernel offers them (madvise mode). Every transform
// touches such buffers fresh (glibc returns big blocks to the kernel on free),
// and on the VMs this runs on a 4 KB page fault costs microseconds: for a
// 1280x1024 progressive JPEG the faults of its coefficient arrays were a
// third of the transform's CPU time. With 2 MB pages it is one fault each.
#pragma once

#include <cstddef>
#include <cstdint>

namespace nic::detail {

class BigBuffer {
 public:
  BigBuffer() = default;
  explicit BigBuffer(std::size_t size) { allocate(size); }
  ~BigBuffer();
  BigBuffer(const BigBuffer&) = delete;
  BigBuffer& operator=(const BigBuffer&) = delete;

  // Frees what it held and allocates `size` bytes, not zeroed; false when out
  // of memory (it then holds nothing). Never throws (libjpeg callbacks use it).
  bool allocate(std::size_t size) noexcept;
  explicit operator bool() const { return data_ != nullptr; }
  std::uint8_t* get() const { return data_; }

 private:
  std::uint8_t* data_ = nullptr;
};

}  // namespace nic::detail
