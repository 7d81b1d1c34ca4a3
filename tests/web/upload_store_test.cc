// SPDX-License-Identifier: Apache-2.0
// UploadStore: pieces only at the current size, owners apart, limits,
// expiry, and a directory emptied at start.
#include "vigo/web/upload_store.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <fstream>
#include <functional>
#include <iterator>

#include "vigo/common/error.h"

namespace vigo::web {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct Dir {
  fs::path path = fs::temp_directory_path() / ("vigo-uploads-" + std::to_string(::getpid()) + "-" +
                                               ::testing::UnitTest::GetInstance()->current_test_info()->name());
  ~Dir() { fs::remove_all(path); }
};

std::string contents(const fs::path& p) {
  std::ifstream in{p, std::ios::binary};
  return {std::istreambuf_iterator<char>{in}, {}};
}

ErrorCode code_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  return ErrorCode::kInternal;  // nothing thrown: not what any test expects
}

TEST(UploadStore, AppendsOnlyAtTheCurrentSizeAndHandsTheFileOver) {
  Dir d;
  UploadStore store{UploadOptions{d.path, 1 << 20, 4, 3600s}};
  const auto id = store.create(7);
  EXPECT_EQ(id.size(), 32u);
  EXPECT_EQ(store.append(id, 7, 0, "hello "), 6u);
  EXPECT_EQ(code_of([&] { store.append(id, 7, 0, "hello "); }), ErrorCode::kConflict);  // a retried piece
  EXPECT_EQ(code_of([&] { store.append(id, 7, 10, "x"); }), ErrorCode::kConflict);      // ahead of the end
  EXPECT_EQ(store.append(id, 7, 6, "world"), 11u);
  EXPECT_EQ(store.size(id, 7), 11u);
  const auto file = store.take(id, 7);
  EXPECT_EQ(contents(file), "hello world");
  EXPECT_EQ(code_of([&] { (void)store.size(id, 7); }), ErrorCode::kNotFound);
}

TEST(UploadStore, AnotherOwnersUploadIsNotThere) {
  Dir d;
  UploadStore store{UploadOptions{d.path, 1 << 20, 4, 3600s}};
  const auto id = store.create(1);
  EXPECT_EQ(code_of([&] { store.append(id, 2, 0, "x"); }), ErrorCode::kNotFound);
  EXPECT_EQ(code_of([&] { (void)store.take(id, 2); }), ErrorCode::kNotFound);
  EXPECT_EQ(code_of([&] { store.remove("0123456789abcdef0123456789abcdef", 1); }), ErrorCode::kNotFound);
  EXPECT_EQ(store.size(id, 1), 0u);
}

TEST(UploadStore, LimitsHoldAndNothingOfARefusedPieceIsWritten) {
  Dir d;
  UploadStore store{UploadOptions{d.path, 10, 2, 3600s}};
  const auto a = store.create(1);
  (void)store.create(1);
  EXPECT_EQ(code_of([&] { (void)store.create(1); }), ErrorCode::kResourceExhausted);
  (void)store.create(2);  // another owner has their own allowance
  EXPECT_EQ(store.append(a, 1, 0, "12345678"), 8u);
  EXPECT_EQ(code_of([&] { store.append(a, 1, 8, "abc"); }), ErrorCode::kResourceExhausted);
  EXPECT_EQ(store.size(a, 1), 8u);
  EXPECT_EQ(contents(store.take(a, 1)), "12345678");
}

TEST(UploadStore, IdleUploadsExpireWithTheirFilesAndAStartEmptiesTheDirectory) {
  Dir d;
  const auto t0 = UploadStore::Clock::now();
  {
    UploadStore store{UploadOptions{d.path, 1 << 20, 4, 60s}};
    const auto idle = store.create(1, t0);
    const auto busy = store.create(1, t0);
    store.append(busy, 1, 0, "x", t0 + 50s);
    EXPECT_EQ(store.expire(t0 + 70s), 1u);
    EXPECT_EQ(code_of([&] { (void)store.size(idle, 1); }), ErrorCode::kNotFound);
    EXPECT_EQ(store.size(busy, 1), 1u);
    EXPECT_FALSE(fs::exists(d.path / idle));
    std::ofstream{d.path / "left-over"} << "from a crash";
  }
  UploadStore again{UploadOptions{d.path, 1 << 20, 4, 60s}};
  EXPECT_TRUE(fs::is_empty(d.path));
}

}  // namespace
}  // namespace vigo::web
