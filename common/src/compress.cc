// SPDX-License-Identifier: Apache-2.0
#include "vigo/common/compress.h"

#include <zstd.h>

#include <string>

#include "vigo/common/error.h"

namespace vigo {

std::vector<std::uint8_t> zstd_compress(std::span<const std::uint8_t> raw, int level) {
  std::vector<std::uint8_t> out(ZSTD_compressBound(raw.size()));
  const std::size_t n = ZSTD_compress(out.data(), out.size(), raw.data(), raw.size(), level);
  if (ZSTD_isError(n)) throw Error{ErrorCode::kInternal, std::string{"zstd compress: "} + ZSTD_getErrorName(n)};
  out.resize(n);
  return out;
}

std::vector<std::uint8_t> zstd_decompress(std::span<const std::uint8_t> compressed, std::size_t raw_size) {
  const unsigned long long declared = ZSTD_getFrameContentSize(compressed.data(), compressed.size());
  if (declared == ZSTD_CONTENTSIZE_ERROR) throw invalid_argument("zstd data", "not a zstd frame");
  if (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != raw_size) {
    throw invalid_argument("zstd data",
                           "declares " + std::to_string(declared) + " bytes, expected " + std::to_string(raw_size));
  }
  std::vector<std::uint8_t> out(raw_size);
  const std::size_t n = ZSTD_decompress(out.data(), out.size(), compressed.data(), compressed.size());
  if (ZSTD_isError(n)) throw invalid_argument("zstd data", ZSTD_getErrorName(n));
  if (n != raw_size) {
    throw invalid_argument("zstd data",
                           "decompressed to " + std::to_string(n) + " bytes, expected " + std::to_string(raw_size));
  }
  return out;
}

}  // namespace vigo
