// SPDX-License-Identifier: Apache-2.0
// What the API's integration tests share (api_itest.cc, api_guest_itest.cc):
// reading vigo's JSON errors, and an event-stream reader in a thread.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "vigo/web/api_client.h"

namespace vigo::web::api_test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;

inline json body_of(const ApiReply& r) { return json::parse(r.body, nullptr, false); }
inline std::string error_field(const ApiReply& r) { return body_of(r)["error"].value("field", ""); }

// Collects the events of one stream in a thread until `enough` holds.
class EventReader {
 public:
  EventReader(std::string url, fs::path ca, const std::string& token, std::string target,
              std::function<bool(const std::vector<ApiClient::ServerEvent>&)> enough)
      : thread_([this, url = std::move(url), ca = std::move(ca), token, target = std::move(target),
                 enough = std::move(enough)] {
          try {
            auto client = ApiClient{ApiClientOptions{url, token, ca, 20s}};
            client.events(target, [&](const ApiClient::ServerEvent& e) {
              std::lock_guard lock{mutex_};
              events_.push_back(e);
              if (e.event == "ready") ready_.notify_all();
              return !enough(events_);
            });
          } catch (const std::exception& e) {
            std::lock_guard lock{mutex_};
            error_ = e.what();
          }
          std::lock_guard lock{mutex_};
          done_ = true;
          ready_.notify_all();
        }) {}
  ~EventReader() {
    if (thread_.joinable()) thread_.join();
  }
  // Until the stream said "ready" (everything later is seen).
  void wait_ready() {
    std::unique_lock lock{mutex_};
    ASSERT_TRUE(ready_.wait_for(lock, 20s, [&] { return done_ || !events_.empty(); }));
    ASSERT_FALSE(events_.empty()) << error_;
    ASSERT_EQ(events_.front().event, "ready");
  }
  // Joins the thread: the stream ended because `enough` held (or failed).
  std::vector<ApiClient::ServerEvent> finish() {
    thread_.join();
    EXPECT_EQ(error_, "");
    return events_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::vector<ApiClient::ServerEvent> events_;
  std::string error_;
  bool done_ = false;
  std::thread thread_;
};

inline std::size_t count_of(const std::vector<ApiClient::ServerEvent>& v, const std::string& kind) {
  return static_cast<std::size_t>(std::count_if(v.begin(), v.end(), [&](const auto& e) { return e.event == kind; }));
}

}  // namespace vigo::web::api_test
