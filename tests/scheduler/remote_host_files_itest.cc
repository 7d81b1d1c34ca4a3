// SPDX-License-Identifier: Apache-2.0
// RemoteHostFiles against the real host agent (vigo-host) through a real
// sshd on loopback: every operation does on "the host" what LocalHostFiles
// does here (directories, overlays and disk copies with qemu-img, console
// lines, a clone save stream read from a FIFO, fetching a file), names with
// spaces and quotes survive the remote shell, the agent's errors come back
// with their codes, long operations end when stopped, and a host that
// cannot be reached is kUnavailable.
#include "vigo/scheduler/remote_host_files.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "scheduler/synthetic_save.h"
#include "support/sshd_fixture.h"
#include "support/temp_dir.h"
#include "support/text_file.h"
#include "vigo/common/error.h"
#include "vigo/common/subprocess.h"
#include "vigo/scheduler/host_agent.h"

namespace vigo::scheduler {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

class RemoteHostFilesTest : public ::testing::Test {
 protected:
  RemoteHostFilesTest() : files_(options()) {}

  RemoteHostOptions options() const {
    RemoteHostOptions o;
    o.ssh = sshd_.ssh_argv("");
    o.ssh.pop_back();  // the remote command: RemoteHostFiles adds its own
    o.agent = VIGO_HOST_AGENT_PATH;
    o.staging_dir = dir_.path() / "staging";
    return o;
  }
  // The code of the Error `f` throws (kInternal with a failure if none).
  template <typename F>
  ErrorCode code_of(F&& f) {
    try {
      f();
    } catch (const Error& e) {
      last_error_ = e.what();
      return e.code();
    }
    ADD_FAILURE() << "no error";
    return ErrorCode::kInternal;
  }

  testing::SshdFixture sshd_;
  testing::TempDir dir_{"vigo-remote-files"};
  RemoteHostFiles files_;
  std::string last_error_;
};

TEST_F(RemoteHostFilesTest, DirectoriesAndFilesRoundTripWithAwkwardNames) {
  const fs::path vm = dir_.path() / "state dir" / "it's $HOME; `id`";
  files_.make_dir(vm);
  EXPECT_TRUE(fs::is_directory(vm));
  EXPECT_EQ(files_.list_dir(vm.parent_path()), std::vector<std::string>{"it's $HOME; `id`"});
  EXPECT_TRUE(files_.list_dir(dir_.path() / "missing").empty());

  const std::string text = "boot\nVIGO-READY at 3 s\nmore\n";
  synthetic::write_file(vm / "console.log", text);
  EXPECT_EQ(files_.tail(vm / "console.log", 5), "more\n");
  EXPECT_EQ(files_.tail(vm / "absent.log", 5), "");

  const fs::path fetched = files_.fetch(vm / "console.log");
  EXPECT_NE(fetched, vm / "console.log");
  EXPECT_EQ(testing::read_text_file(fetched), text);
  files_.release(fetched);
  EXPECT_FALSE(fs::exists(fetched));
  EXPECT_EQ(code_of([&] { (void)files_.fetch(vm / "absent"); }), ErrorCode::kNotFound) << last_error_;
  EXPECT_TRUE(fs::is_empty(dir_.path() / "staging"));  // no copy left of a failed fetch

  files_.remove_all(vm.parent_path());
  EXPECT_FALSE(fs::exists(vm.parent_path()));
  files_.remove_all(vm.parent_path());  // nothing there is fine
}

TEST_F(RemoteHostFilesTest, OverlaysAndDiskCopiesAreMadeThereWithTheirErrors) {
  const fs::path image = dir_.path() / "base.raw";
  const std::string bytes = synthetic::random_stream(4u << 20, 3);
  synthetic::write_file(image, bytes);
  const fs::path overlay = dir_.path() / "disk.qcow2";
  files_.create_overlay(image, DiskFormat::kRaw, overlay);
  EXPECT_TRUE(fs::exists(overlay));
  files_.full_disk_copy(overlay, dir_.path() / "full.raw");
  EXPECT_EQ(testing::read_text_file(dir_.path() / "full.raw"), bytes);  // the whole disk, through the overlay
  files_.portable_checkpoint_disk(overlay, dir_.path() / "portable.qcow2");
  EXPECT_TRUE(fs::exists(dir_.path() / "portable.qcow2"));

  EXPECT_EQ(code_of([&] { files_.create_overlay(image, DiskFormat::kRaw, overlay); }), ErrorCode::kAlreadyExists)
      << last_error_;
  EXPECT_NE(last_error_.find(overlay.string()), std::string::npos) << last_error_;
  EXPECT_EQ(code_of([&] { files_.create_overlay(dir_.path() / "nope.raw", DiskFormat::kRaw, dir_.path() / "o2"); }),
            ErrorCode::kNotFound)
      << last_error_;
  EXPECT_FALSE(fs::exists(dir_.path() / "o2"));
}

TEST_F(RemoteHostFilesTest, AConsoleLineIsSeenWhenItComesAndAWaitEndsWhenStopped) {
  const fs::path console = dir_.path() / "vm-1" / "console.log";
  fs::create_directories(console.parent_path());
  auto seen = std::async(std::launch::async, [&] {
    return files_.wait_for_line(console, "VIGO-READY", Clock::now() + 60s, {});
  });
  std::this_thread::sleep_for(500ms);  // the agent waits for a file that is not there yet
  {
    std::ofstream out{console};
    out << "Linux version 6.1\n" << std::flush;
    out << "VIGO-READY uptime 4.2\nafter\n";
  }
  EXPECT_EQ(seen.get(), std::optional<std::string>{"VIGO-READY uptime 4.2"});

  // Never there: the deadline ends the wait; so does a stop request, long before its deadline.
  EXPECT_EQ(files_.wait_for_line(console, "NEVER", Clock::now() + 1s, {}), std::nullopt);
  std::stop_source stop;
  const auto started = Clock::now();
  auto stopped = std::async(std::launch::async, [&] {
    return files_.wait_for_line(console, "NEVER", Clock::now() + 120s, stop.get_token());
  });
  std::this_thread::sleep_for(500ms);
  stop.request_stop();
  EXPECT_EQ(stopped.get(), std::nullopt);
  EXPECT_LT(Clock::now() - started, 60s);  // not the deadline: the stop (a bound, not a timing)
}

TEST_F(RemoteHostFilesTest, ACloneStreamsThroughAFifoThereByteForByte) {
  synthetic::Synthetic s;
  s.stream = synthetic::random_stream(6u << 20, 11);
  const fs::path parent = dir_.path() / "parent.sav";
  synthetic::write_file(parent, s.bytes());
  const SaveFileHeader header = files_.read_save_file_header(parent);
  EXPECT_EQ(header.xml, read_save_file_header(parent).xml);
  EXPECT_EQ(header.stream_offset, read_save_file_header(parent).stream_offset);

  const fs::path written = dir_.path() / "clone.sav";
  (void)write_clone_save_file(parent, synthetic::clone_identity(2), written);
  const fs::path fifo = dir_.path() / "resume.save";
  {
    auto stream = files_.stream_clone(parent, header, synthetic::clone_identity(2), fifo);
    EXPECT_EQ(stream->path(), fifo);
    EXPECT_TRUE(fs::is_fifo(fifo));
    EXPECT_EQ(synthetic::read_fifo(fifo), testing::read_text_file(written));
    // The agent ends by itself once the reader took everything.
    for (int i = 0; i < 300 && !stream->finished(); ++i) std::this_thread::sleep_for(100ms);
    EXPECT_TRUE(stream->finished());
    EXPECT_EQ(stream->stop(), "");
  }
  EXPECT_FALSE(fs::exists(fifo));
  {
    auto never = files_.stream_clone(parent, header, synthetic::clone_identity(3), fifo);  // no reader comes
    EXPECT_EQ(never->stop(), "");
  }
  EXPECT_FALSE(fs::exists(fifo));  // the agent removed it when stopped
  synthetic::write_file(dir_.path() / "taken", "mine");
  EXPECT_EQ(code_of([&] {
              (void)files_.stream_clone(parent, header, synthetic::clone_identity(1), dir_.path() / "taken");
            }),
            ErrorCode::kAlreadyExists)
      << last_error_;
  EXPECT_EQ(testing::read_text_file(dir_.path() / "taken"), "mine");
}

// An operation that does not end in time is kTimeout, and the agent doing
// it on the far side is gone too (its ssh session's stdin closed).
TEST_F(RemoteHostFilesTest, AnOperationThatTakesTooLongIsStoppedThere) {
  RemoteHostOptions o = options();
  o.timeout = 2s;
  o.quick_timeout = 2s;
  RemoteHostFiles slow{o};
  const fs::path fifo = dir_.path() / "never-written";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);  // opening it for reading blocks: no writer ever comes
  EXPECT_EQ(code_of([&] { (void)slow.fetch(fifo); }), ErrorCode::kTimeout) << last_error_;
  EXPECT_EQ(code_of([&] { (void)slow.tail(fifo, 10); }), ErrorCode::kTimeout) << last_error_;
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    gone = run_command({"pgrep", "-f", "vigo-host (cat|tail) " + fifo.string()}, 10s).exit_code == 1;
    if (!gone) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(gone) << "an agent still runs on the host";
  EXPECT_TRUE(fs::is_empty(dir_.path() / "staging"));
}

TEST_F(RemoteHostFilesTest, TheAgentRefusesWhatVigodWouldNeverSend) {
  EXPECT_EQ(code_of([&] { files_.make_dir("relative/dir"); }), ErrorCode::kInvalidArgument) << last_error_;
  EXPECT_EQ(code_of([&] { files_.remove_all(dir_.path() / ".." / "x"); }), ErrorCode::kInvalidArgument)
      << last_error_;
  EXPECT_NE(last_error_.find(".."), std::string::npos) << last_error_;
  const RunResult unknown = run_command({VIGO_HOST_AGENT_PATH, "format-disk", "/"}, 10s);
  EXPECT_EQ(unknown.exit_code, kAgentFailed);
  EXPECT_NE(unknown.output.find("vigo-host: invalid_argument: "), std::string::npos) << unknown.output;
  const RunResult missing = run_command({VIGO_HOST_AGENT_PATH, "overlay", "/a"}, 10s);
  EXPECT_NE(missing.output.find("takes 3 arguments"), std::string::npos) << missing.output;
  EXPECT_THROW(decode_clone_identity(R"({"name": "x"})"), Error);
}

TEST_F(RemoteHostFilesTest, AHostThatCannotBeReachedOrHasNoAgentIsUnavailable) {
  RemoteHostOptions o = options();
  o.agent = "/nonexistent/vigo-host";
  RemoteHostFiles no_agent{o};
  EXPECT_EQ(code_of([&] { no_agent.make_dir(dir_.path() / "x"); }), ErrorCode::kUnavailable) << last_error_;
  EXPECT_NE(last_error_.find("no host agent"), std::string::npos) << last_error_;

  o = options();
  sshd_.stop();  // nothing listens on its port any more
  RemoteHostFiles down{o};
  EXPECT_EQ(code_of([&] { down.make_dir(dir_.path() / "x"); }), ErrorCode::kUnavailable) << last_error_;
  EXPECT_NE(last_error_.find("cannot reach host"), std::string::npos) << last_error_;
  EXPECT_FALSE(fs::exists(dir_.path() / "x"));
}

}  // namespace
}  // namespace vigo::scheduler
