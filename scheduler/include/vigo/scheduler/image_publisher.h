// SPDX-License-Identifier: Apache-2.0
// ImagePublisher: how the scheduler puts a file (a checkpoint's memory state
// or disk) on the image server as the next immutable version of an image.
// StorePublisher publishes into an image server's store on this machine with
// `vigo-imaged publish --root STORE --json` (the catalog's own locking makes
// it safe next to a serving vigo-imaged); chunks already in the store are not
// written again, so a checkpoint costs only the chunks that changed.
// remove() deletes one version from the store (`vigo-imaged delete`, which
// collects the chunks no other image or open reader uses).
// Errors: vigo::Error kNotFound (no file, no such version), kInternal with
// vigo-imaged's message. Thread-safe (each call is its own process).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>

namespace vigo::scheduler {

struct PublishedImage {
  std::string name;
  std::uint32_t version = 0;
  std::uint64_t size = 0;
  std::uint64_t chunks_written = 0;  // new chunks the store had to take
  // The file name under a vigo-fs mount's images/ directory: name@version.
  [[nodiscard]] std::string file_name() const { return name + "@" + std::to_string(version); }
};

class ImagePublisher {
 public:
  virtual ~ImagePublisher() = default;
  virtual PublishedImage publish(const std::filesystem::path& file, const std::string& name) = 0;
  virtual void remove(const std::string& name, std::uint32_t version) = 0;
  // The GIS name of the image server the images land on.
  [[nodiscard]] virtual std::string server_name() const = 0;
};

class StorePublisher : public ImagePublisher {
 public:
  StorePublisher(std::filesystem::path imaged, std::filesystem::path store, std::string server_name,
                 std::chrono::seconds timeout = std::chrono::seconds{600})
      : imaged_(std::move(imaged)), store_(std::move(store)), server_(std::move(server_name)), timeout_(timeout) {}
  PublishedImage publish(const std::filesystem::path& file, const std::string& name) override;
  void remove(const std::string& name, std::uint32_t version) override;
  [[nodiscard]] std::string server_name() const override { return server_; }

 private:
  std::filesystem::path imaged_, store_;
  std::string server_;
  std::chrono::seconds timeout_;
};

}  // namespace vigo::scheduler
