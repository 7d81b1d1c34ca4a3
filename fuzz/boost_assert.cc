// SPDX-License-Identifier: Apache-2.0
// Boost's assertion handler for the fuzz targets (BOOST_ENABLE_ASSERT_HANDLER
// in fuzz/CMakeLists.txt): every failed BOOST_ASSERT aborts with its place,
// as the default would, except one that is known to be wrong.
//
// Boost 1.81's basic_parser::parse_chunk_header asserts n >= 5 when it
// comes back to a final chunk header after need_more, but a chunked body
// may stop after "0\r\n" and resume one byte at a time; the code after the
// assertion handles that (it finds no end of message and asks for more).
// Beast fixed the assertion upstream (boostorg/beast pull request 2861,
// 2024). vigod is built with NDEBUG, so the assertion is not in it.
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace boost {

void assertion_failed_msg(char const* expr, char const* msg, char const* function, char const* file, long line) {
  const std::string_view where{file};
  if (std::string_view{expr} == "n >= 5" && where.ends_with("boost/beast/http/impl/basic_parser.ipp")) return;
  std::fprintf(stderr, "%s:%ld: %s: Boost assertion `%s' failed%s%s\n", file, line, function, expr, msg ? ": " : "",
               msg ? msg : "");
  std::abort();
}

void assertion_failed(char const* expr, char const* function, char const* file, long line) {
  assertion_failed_msg(expr, nullptr, function, file, line);
}

}  // namespace boost
