#include "big_buffer.h"

#include <sys/mman.h>

#include <cstdlib>

namespace nic::detail {

BigBuffer::~BigBuffer() { std::free(data_); }

bool BigBuffer::allocate(std::size_t size) noexcept {
  std::free(data_);
  data_ = nullptr;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr std::size_t kHuge = std::size_t{2} << 20;
  if (size >= kHuge && size <= SIZE_MAX - kHuge) {
    // Whole huge pages: a partial one at the end would fault in 4 KB steps.
    const std::size_t rounded = (size + kHuge - 1) / kHuge * kHuge;
    void* p = nullptr;
    if (posix_memalign(&p, kHuge, rounded) == 0) {
      madvise(p, rounded, MADV_HUGEPAGE);  // advice only: a refusal leaves 4 KB pages
      data_ = static_cast<std::uint8_t*>(p);
      return true;
    }
  }
#endif
  data_ = static_cast<std::uint8_t*>(std::malloc(size == 0 ? 1 : size));
  return data_ != nullptr;
}

}  // namespace nic::detail
