// SPDX-License-Identifier: Apache-2.0
#include "vigo/scheduler/console_watch.h"

#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "imageserver/store_test_util.h"

namespace vigo::scheduler {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

void append(const std::filesystem::path& p, const std::string& text) {
  std::ofstream out{p, std::ios::app | std::ios::binary};
  out << text;
}

TEST(ConsoleWatchTest, FindsALineWrittenLaterInPieces) {
  testing::TempDir dir;
  const auto file = dir.path() / "console.log";
  ConsoleWatch watch{file};  // the file does not exist yet
  std::thread guest{[&] {
    std::this_thread::sleep_for(50ms);
    append(file, "[    0.1] booting\r\nVIGO-RE");
    std::this_thread::sleep_for(50ms);
    append(file, "ADY 4.20\r\nmore\n");
  }};
  const auto line = watch.wait_for("VIGO-READY", Clock::now() + 10s);
  guest.join();
  ASSERT_TRUE(line.has_value());
  EXPECT_EQ(*line, "VIGO-READY 4.20");
  EXPECT_NE(watch.tail(100).find("booting"), std::string::npos);
}

TEST(ConsoleWatchTest, OnlyLinesAfterWhatWasReadCount) {
  testing::TempDir dir;
  const auto file = dir.path() / "console.log";
  append(file, "VIGO-READY 1\n");
  ConsoleWatch watch{file};
  ASSERT_EQ(watch.wait_for("VIGO-READY", Clock::now() + 1s), "VIGO-READY 1");
  // The same line again needs a new one; a partial line is not a line.
  append(file, "VIGO-READY 2");
  EXPECT_EQ(watch.wait_for("VIGO-READY", Clock::now() + 200ms), std::nullopt);
  append(file, "\n");
  EXPECT_EQ(watch.wait_for("VIGO-READY", Clock::now() + 1s), "VIGO-READY 2");
}

TEST(ConsoleWatchTest, GivesUpAtTheDeadlineOrWhenStopped) {
  testing::TempDir dir;
  ConsoleWatch watch{dir.path() / "quiet.log"};
  const auto start = Clock::now();
  EXPECT_EQ(watch.wait_for("VIGO-READY", start + 100ms), std::nullopt);
  EXPECT_GE(Clock::now() - start, 100ms);
  std::stop_source stop;
  std::thread stopper{[&] {
    std::this_thread::sleep_for(50ms);
    stop.request_stop();
  }};
  EXPECT_EQ(watch.wait_for("VIGO-READY", Clock::now() + 60s, stop.get_token()), std::nullopt);
  stopper.join();
}

}  // namespace
}  // namespace vigo::scheduler
