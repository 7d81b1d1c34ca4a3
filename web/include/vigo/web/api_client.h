// SPDX-License-Identifier: Apache-2.0
// ApiClient: a synchronous HTTPS client of vigod's API for the command
// line, `vigo up` and the tests. It verifies the server's certificate
// against ca_file and that it names the host of the URL (DNS name or IP
// address), sends the bearer token, and keeps one connection open across
// calls (reconnecting once when the server closed it). get/post/del return
// the JSON body of a 2xx reply and throw vigo::Error otherwise: the
// server's error code and message when the body is vigo's error JSON,
// else the code for the status (api_error.h). Network failures are
// kUnavailable, a call longer than timeout kTimeout. One thread at a time.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace vigo::web {

struct ApiClientOptions {
  std::string url;  // https://host:port
  std::string token;  // empty: no Authorization header
  std::filesystem::path ca_file;  // PEM; empty: the system's CAs
  std::chrono::seconds timeout{30};
};

struct ApiReply {
  int status = 0;
  std::string content_type;
  std::string body;
  std::map<std::string, std::string> headers;  // names lower-case
};

class ApiClient {
 public:
  explicit ApiClient(ApiClientOptions options);  // kInvalidArgument for a bad URL or CA file
  ~ApiClient();
  ApiClient(const ApiClient&) = delete;
  ApiClient& operator=(const ApiClient&) = delete;

  // Any status; throws only when no reply came.
  ApiReply request(std::string_view method, std::string_view target, std::string_view body = {},
                   std::string_view content_type = "application/json");
  nlohmann::json get(std::string_view target);
  nlohmann::json post(std::string_view target, const nlohmann::json& body = nlohmann::json::object());
  nlohmann::json del(std::string_view target);
  // PUT of raw bytes (a piece of an upload).
  nlohmann::json put_bytes(std::string_view target, std::string_view bytes);
  // How long one call may wait for the server (a publish takes a while).
  void set_timeout(std::chrono::seconds timeout);

  // A server-sent event stream (GET target, e.g. "/v1/events") on a
  // connection of its own: on_event is called for each event until it
  // returns false or the server ends the stream. Throws as get() does for
  // a non-2xx reply, kTimeout when nothing (not even a heartbeat) came for
  // `timeout`, kUnavailable when the connection broke.
  struct ServerEvent {
    std::string id, event, data;
  };
  void events(std::string_view target, const std::function<bool(const ServerEvent&)>& on_event);

  // The JSON body of a 2xx reply; otherwise throws as get() does.
  static nlohmann::json checked(const ApiReply& reply);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vigo::web
