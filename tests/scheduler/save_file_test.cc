// SPDX-License-Identifier: Apache-2.0
// Save files for clone-N, on synthetic files laid out as libvirt 9.0 writes
// them (the XML and cookie below are those of a real save of the tiny guest,
// with other paths): parsing, every defect named, the XML rewrite (identity
// changed, nothing else), the kept or grown XML area, the stream copied
// byte for byte, and no file left behind when writing fails.
#include "vigo/scheduler/save_file.h"

#include "vigo/scheduler/clone_save_stream.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "scheduler/synthetic_save.h"
#include "support/temp_dir.h"
#include "support/text_file.h"
#include "vigo/common/error.h"

namespace vigo::scheduler {
namespace {

namespace fs = std::filesystem;
using namespace synthetic;  // NOLINT(google-build-using-namespace): the test's own fixtures

std::set<std::string> names_in(const fs::path& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

CloneIdentity parent_identity() {
  CloneIdentity id;
  id.name = "parent";
  id.uuid = "11111111-2222-4333-8444-555555555555";
  id.macs = {"52:54:00:aa:bb:01", "52:54:00:aa:bb:02"};
  id.disks = {{"vda", "/var/lib/vigo/parent.qcow2"}};
  id.console_log = "/var/lib/vigo/parent.console";
  return id;
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in{s};
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

class SaveFileTest : public ::testing::Test {
 protected:
  fs::path put(const std::string& name, const std::string& bytes) {
    const fs::path p = dir_.path() / name;
    write_file(p, bytes);
    return p;
  }
  // The message of the Error that reading `s` as a file throws.
  std::string defect(const Synthetic& s) {
    const fs::path p = put("defect.sav", s.bytes());
    try {
      (void)read_save_file_header(p);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
      const std::string prefix = "save file " + p.string() + ": ";
      EXPECT_EQ(std::string{e.what()}.rfind(prefix, 0), 0u) << e.what();
      return std::string{e.what()}.substr(std::min(prefix.size(), std::string{e.what()}.size()));
    }
    return "accepted";
  }
  testing::TempDir dir_{"vigo-save-file-test"};
};

TEST_F(SaveFileTest, ParsesWhatLibvirtWrites) {
  Synthetic s;
  s.stream = random_stream(1000);
  const fs::path p = put("p.sav", s.bytes());
  const SaveFileHeader h = read_save_file_header(p);
  EXPECT_EQ(h.version, 2u);
  EXPECT_EQ(h.data_len, std::string{kXml}.size() + 1 + std::string{kCookie}.size() + 1 + 65536);
  EXPECT_EQ(h.was_running, 1u);
  EXPECT_EQ(h.compressed, 0u);
  EXPECT_EQ(h.cookie_offset, std::string{kXml}.size() + 1);
  EXPECT_EQ(h.xml, kXml);
  EXPECT_EQ(h.cookie, kCookie);
  EXPECT_EQ(h.stream_offset, 92u + h.data_len);
  EXPECT_EQ(fs::file_size(p) - h.stream_offset, 1000u);

  const SaveFileHeader m = parse_save_file_header(s.bytes(), "memory");
  EXPECT_EQ(m.xml, h.xml);
  EXPECT_EQ(m.cookie, h.cookie);
  EXPECT_EQ(m.stream_offset, h.stream_offset);

  Synthetic no_cookie;
  no_cookie.cookie.clear();
  no_cookie.stream = "x";
  const SaveFileHeader n = read_save_file_header(put("n.sav", no_cookie.bytes()));
  EXPECT_EQ(n.cookie_offset, 0u);
  EXPECT_EQ(n.cookie, "");
  EXPECT_EQ(n.xml, kXml);
}

TEST_F(SaveFileTest, EveryDefectIsNamed) {
  const auto with = [](auto change) {
    Synthetic s;
    s.stream = "QEVM";
    change(s);
    return s;
  };
  EXPECT_EQ(defect(with([](Synthetic& s) { s.magic = "LibvirtQemudXXXX"; })),
            "bad magic (not a libvirt QEMU save file)");
  EXPECT_EQ(defect(with([](Synthetic& s) { s.magic = "LibvirtQemudPart"; })),
            "incomplete (libvirt had not finished writing it)");
  EXPECT_EQ(defect(with([](Synthetic& s) { s.version = 3; })), "unsupported version 3 (expected 2)");
  EXPECT_EQ(defect(with([](Synthetic& s) { s.data_len = 0; })), "bad data_len 0 (XML area must be 1..16777216 bytes)");
  EXPECT_EQ(defect(with([](Synthetic& s) { s.data_len = (16u << 20) + 1; })),
            "bad data_len 16777217 (XML area must be 1..16777216 bytes)");
  EXPECT_EQ(defect(with([](Synthetic& s) { s.compressed = 1; })),
            "compressed (gzip, format 1); only raw save files are supported");
  const std::uint32_t area_len = with([](Synthetic&) {}).len();
  EXPECT_EQ(
      defect(with([](Synthetic& s) { s.cookie_offset = s.len(); })),
      "cookie offset " + std::to_string(area_len) + " is outside the " + std::to_string(area_len) + "-byte XML area");
  // The XML fills its part of the area (up to the cookie) with no NUL.
  EXPECT_EQ(defect(with([](Synthetic& s) {
              s.xml_nul = false;
              s.cookie_offset = static_cast<std::uint32_t>(s.xml.size());
            })),
            "domain XML is not NUL-terminated");
  EXPECT_EQ(defect(with([](Synthetic& s) {
              s.cookie.clear();
              s.xml_nul = false;
              s.data_len = static_cast<std::uint32_t>(s.xml.size());
            })),
            "domain XML is not NUL-terminated");
  EXPECT_EQ(defect(with([](Synthetic& s) { s.xml.clear(); })), "empty domain XML");
  EXPECT_EQ(defect(with([](Synthetic& s) {
              s.cookie_nul = false;
              s.data_len = static_cast<std::uint32_t>(s.area().size());
            })),
            "migration cookie is not NUL-terminated");
  EXPECT_EQ(defect(with([](Synthetic& s) { s.stream.clear(); })), "no migration stream after the XML area");

  const std::string whole = with([](Synthetic&) {}).bytes();
  EXPECT_EQ(defect(with([](Synthetic& s) {
              s.stream.clear();
              s.announced_len = s.len() + 100;  // the area runs past the end of the file
            })),
            "truncated: the header announces a " + std::to_string(area_len + 100) + "-byte XML area, the file has " +
                std::to_string(92 + area_len) + " bytes in all");
  const fs::path short_file = put("short.sav", whole.substr(0, 50));
  try {
    (void)read_save_file_header(short_file);
    ADD_FAILURE() << "read a 50-byte file";
  } catch (const Error& e) {
    EXPECT_EQ(std::string{e.what()},
              "save file " + short_file.string() + ": truncated: 50 bytes, shorter than the 92-byte header");
  }
  try {
    (void)parse_save_file_header(whole.substr(0, 200), "prefix");
    ADD_FAILURE() << "parsed a cut prefix";
  } catch (const Error& e) {
    EXPECT_NE(std::string{e.what()}.find("save file prefix: truncated"), std::string::npos) << e.what();
  }
  try {
    (void)read_save_file_header(dir_.path() / "absent.sav");
    ADD_FAILURE() << "read a missing file";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound) << e.what();
  }
}

TEST_F(SaveFileTest, RewriteChangesTheIdentityAndNothingElse) {
  // Rewriting with the parent's own identity changes nothing but libxml2's
  // quoting: the output is the input with double quotes.
  std::string same = rewrite_domain_xml(kXml, parent_identity());
  std::string expected = kXml;
  std::replace(expected.begin(), expected.end(), '\'', '"');
  EXPECT_EQ(same, expected);

  const std::string out = rewrite_domain_xml(kXml, clone_identity(1));
  const auto a = lines_of(same);
  const auto b = lines_of(out);
  ASSERT_EQ(a.size(), b.size()) << out;
  std::vector<std::string> changed;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i]) changed.push_back(b[i]);
  }
  const std::vector<std::string> want = {
      "  <name>clone-1</name>",
      "  <uuid>99999999-2222-4333-8444-000000000001</uuid>",
      "      <source file=\"/var/lib/vigo/clone-1.qcow2\"/>",
      "      <mac address=\"52:54:00:cc:00:01\"/>",
      "      <mac address=\"52:54:00:dd:00:01\"/>",
      "      <source path=\"/var/lib/vigo/clone-1.console\" append=\"on\"/>",
      "      <source path=\"/var/lib/vigo/clone-1.console\" append=\"on\"/>",
  };
  EXPECT_EQ(changed, want) << out;
  // The read-only image is shared by every clone and stays.
  EXPECT_NE(out.find("<source file=\"/mnt/vigo/images/data\"/>"), std::string::npos);
}

TEST_F(SaveFileTest, RewriteEscapesValuesAndDropsTheOldBackingChain) {
  std::string xml = kXml;
  const std::string disk_end = "<target dev='vda' bus='virtio'/>";
  xml.insert(xml.find(disk_end) + disk_end.size(),
             "\n      <backingStore type='file'><format type='raw'/><source file='/srv/root.ext4'/>"
             "<backingStore/></backingStore>");
  CloneIdentity id = clone_identity(2);
  id.console_log = "/var/lib/vigo/a&b<c>'d\".console";
  const std::string out = rewrite_domain_xml(xml, id);
  EXPECT_EQ(out.find("backingStore"), std::string::npos) << out;
  EXPECT_NE(out.find("path=\"/var/lib/vigo/a&amp;b&lt;c&gt;'d&quot;.console\""), std::string::npos) << out;
  // A second pass reads back what the first wrote.
  CloneIdentity again = clone_identity(3);
  EXPECT_NE(rewrite_domain_xml(out, again).find("<name>clone-3</name>"), std::string::npos);
}

TEST_F(SaveFileTest, RewriteRefusesWhatClonesWouldShareOrLack) {
  const auto field_of = [](const std::string& xml, const CloneIdentity& id) -> std::string {
    try {
      (void)rewrite_domain_xml(xml, id);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      return e.field() + ": " + e.what();
    }
    return "accepted";
  };
  CloneIdentity id = clone_identity();
  id.macs.pop_back();
  EXPECT_EQ(field_of(kXml, id), "clone.macs: invalid clone.macs: 1 MAC(s) for the saved domain's 2 interface(s)");
  id = clone_identity();
  id.disks["vdc"] = "/var/lib/vigo/x.qcow2";
  EXPECT_EQ(field_of(kXml, id), "clone.disks[vdc]: invalid clone.disks[vdc]: the saved domain has no disk vdc");
  id = clone_identity();
  id.disks.clear();
  EXPECT_EQ(field_of(kXml, id),
            "clone.disks: invalid clone.disks: the saved domain's writable disk vda would be shared by every "
            "clone: give it the clone's own file");
  id = clone_identity();
  id.console_log.clear();
  EXPECT_EQ(field_of(kXml, id),
            "clone.console_log: invalid clone.console_log: the saved domain writes its console to "
            "/var/lib/vigo/parent.console: give the clone its own file");
  id = clone_identity();
  id.name = "bad name";
  EXPECT_EQ(field_of(kXml, id).substr(0, 11), "clone.name:");
  id = clone_identity();
  id.uuid = "11111111-2222-4333-8444-55555555555X";
  EXPECT_EQ(field_of(kXml, id).substr(0, 11), "clone.uuid:");
  id = clone_identity();
  id.macs[1] = "53:54:00:00:00:01";  // multicast
  EXPECT_EQ(field_of(kXml, id).substr(0, 16), "clone.macs[1]: i");
  id = clone_identity();
  id.macs[1] = id.macs[0];
  EXPECT_EQ(field_of(kXml, id).substr(0, 16), "clone.macs[1]: i");
  id = clone_identity();
  id.disks["vda"] = "relative.qcow2";
  EXPECT_EQ(field_of(kXml, id).substr(0, 17), "clone.disks[vda]:");
  EXPECT_EQ(field_of("<domain><name>x</name", clone_identity()),
            "domain xml: invalid domain xml: the saved domain XML is not well-formed");
  EXPECT_EQ(field_of("<domain><uuid>x</uuid></domain>", clone_identity()),
            "domain xml: invalid domain xml: the saved domain has no <name>");
  std::string block = kXml;
  block.replace(block.find("<disk type='file'"), 17, "<disk type='block'");
  EXPECT_EQ(field_of(block, clone_identity()),
            "clone.disks[vda]: invalid clone.disks[vda]: disk vda is of type 'block'; only file disks can be given a "
            "new file");
}

TEST_F(SaveFileTest, CloneKeepsTheStreamOffsetWhenTheXmlFits) {
  Synthetic s;
  s.stream = random_stream(3u << 20);
  const fs::path parent = put("parent.sav", s.bytes());
  const SaveFileHeader ph = read_save_file_header(parent);
  const fs::path out = dir_.path() / "clone-1.sav";

  const CloneSaveResult r = write_clone_save_file(parent, clone_identity(1), out);
  EXPECT_TRUE(r.offset_kept);
  EXPECT_EQ(r.data_len, ph.data_len);
  EXPECT_EQ(r.stream_offset, ph.stream_offset);
  EXPECT_EQ(r.parent_stream_offset, ph.stream_offset);
  EXPECT_EQ(r.stream_bytes, 3u << 20);
  EXPECT_EQ(r.file_bytes, fs::file_size(parent));
  EXPECT_EQ(fs::file_size(out), fs::file_size(parent));
  EXPECT_EQ(fs::status(out).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);

  const SaveFileHeader ch = read_save_file_header(out);
  EXPECT_EQ(ch.xml, rewrite_domain_xml(kXml, clone_identity(1)));
  EXPECT_EQ(ch.cookie, kCookie);
  EXPECT_EQ(ch.cookie_offset, ch.xml.size() + 1);
  EXPECT_EQ(ch.was_running, ph.was_running);

  // Only the first stream_offset bytes differ; the prefix is exactly them.
  const std::string pb = testing::read_text_file(parent);
  const std::string cb = testing::read_text_file(out);
  ASSERT_EQ(pb.size(), cb.size());
  EXPECT_TRUE(pb.compare(ph.stream_offset, std::string::npos, cb, ph.stream_offset, std::string::npos) == 0);
  const ClonePrefix prefix = clone_save_prefix(parent, clone_identity(1));
  EXPECT_TRUE(prefix.offset_kept);
  EXPECT_EQ(prefix.parent_stream_offset, ph.stream_offset);
  EXPECT_EQ(prefix.bytes, cb.substr(0, ph.stream_offset));
  // Into one chunk of the image store: everything after the first MiB is the parent's.
  EXPECT_LT(prefix.bytes.size(), kCloneGrowthStep);
}

TEST_F(SaveFileTest, CloneGrowsTheXmlAreaByWholeChunksWhenItDoesNotFit) {
  Synthetic s;
  s.data_len = static_cast<std::uint32_t>(s.area().size());  // no room at all
  s.stream = random_stream(2u << 20, 11);
  const fs::path parent = put("tight.sav", s.bytes());
  const SaveFileHeader ph = read_save_file_header(parent);
  CloneIdentity id = clone_identity(4);
  id.console_log = "/var/lib/vigo/" + std::string(200, 'c') + ".console";  // longer than the parent's path

  const fs::path out = dir_.path() / "clone-4.sav";
  const CloneSaveResult r = write_clone_save_file(parent, id, out);
  EXPECT_FALSE(r.offset_kept);
  EXPECT_EQ(r.data_len, ph.data_len + kCloneGrowthStep);
  EXPECT_EQ(r.stream_offset, ph.stream_offset + kCloneGrowthStep);
  const SaveFileHeader ch = read_save_file_header(out);
  EXPECT_EQ(ch.data_len, r.data_len);
  EXPECT_NE(ch.xml.find(id.console_log.string()), std::string::npos);
  EXPECT_EQ(ch.cookie, kCookie);

  const std::string pb = testing::read_text_file(parent);
  const std::string cb = testing::read_text_file(out);
  ASSERT_EQ(cb.size(), pb.size() + kCloneGrowthStep);
  EXPECT_TRUE(pb.compare(ph.stream_offset, std::string::npos, cb, r.stream_offset, std::string::npos) == 0);
  const ClonePrefix prefix = clone_save_prefix(parent, id);
  EXPECT_FALSE(prefix.offset_kept);
  EXPECT_EQ(prefix.bytes, cb.substr(0, r.stream_offset));
}

TEST_F(SaveFileTest, NoFileIsLeftBehindWhenWritingFails) {
  Synthetic s;
  s.stream = random_stream(4u << 20, 3);
  const fs::path parent = put("parent.sav", s.bytes());
  const std::set<std::string> before = names_in(dir_.path());
  const fs::path out = dir_.path() / "clone.sav";

  CloneIdentity missing_disk = clone_identity();
  missing_disk.disks["vdz"] = "/var/lib/vigo/z.qcow2";
  EXPECT_THROW(write_clone_save_file(parent, missing_disk, out), Error);
  EXPECT_EQ(names_in(dir_.path()), before);

  EXPECT_THROW(write_clone_save_file(dir_.path() / "absent.sav", clone_identity(), out), Error);
  EXPECT_THROW(write_clone_save_file(parent, clone_identity(), dir_.path() / "no-such-dir" / "clone.sav"), Error);
  EXPECT_EQ(names_in(dir_.path()), before);

  // The file system refuses the write half way through the stream (a file
  // size limit stands in for a full disk).
  {
    struct sigaction ignore {};
    struct sigaction old {};
    ignore.sa_handler = SIG_IGN;
    ASSERT_EQ(::sigaction(SIGXFSZ, &ignore, &old), 0);
    rlimit saved{};
    ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
    rlimit small = saved;
    small.rlim_cur = 1u << 20;
    ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
    try {
      (void)write_clone_save_file(parent, clone_identity(), out);
      ADD_FAILURE() << "wrote 4 MiB under a 1 MiB file size limit";
    } catch (const Error& e) {
      EXPECT_NE(std::string{e.what()}.find("File too large"), std::string::npos) << e.what();
    }
    ::setrlimit(RLIMIT_FSIZE, &saved);
    ::sigaction(SIGXFSZ, &old, nullptr);
  }
  EXPECT_EQ(names_in(dir_.path()), before);

  // An existing file is never replaced.
  write_file(out, "mine");
  try {
    (void)write_clone_save_file(parent, clone_identity(), out);
    ADD_FAILURE() << "replaced an existing file";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kAlreadyExists) << e.what();
  }
  EXPECT_EQ(testing::read_text_file(out), "mine");
  std::set<std::string> with_out = before;
  with_out.insert("clone.sav");
  EXPECT_EQ(names_in(dir_.path()), with_out);
}

TEST_F(SaveFileTest, AStreamedCloneIsByteForByteTheWrittenOne) {
  Synthetic s;
  s.stream = random_stream(5u << 20);
  const fs::path parent = put("parent.sav", s.bytes());
  const fs::path written = dir_.path() / "clone-2.sav";
  (void)write_clone_save_file(parent, clone_identity(2), written);
  const fs::path fifo = dir_.path() / "resume.save";
  std::string streamed;
  {
    CloneSaveStream stream{parent, clone_identity(2), fifo};
    EXPECT_EQ(stream.path(), fifo);
    EXPECT_TRUE(fs::is_fifo(fifo));
    EXPECT_EQ(fs::status(fifo).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
    streamed = read_fifo(fifo);
    EXPECT_EQ(stream.stop(), "");
    EXPECT_TRUE(stream.finished());
    EXPECT_EQ(stream.written(), streamed.size());
  }
  EXPECT_EQ(streamed, testing::read_text_file(written));
  EXPECT_FALSE(fs::exists(fifo));  // gone with the stream
}

TEST_F(SaveFileTest, AStreamEndsWhenItsReaderNeverComesOrGoesAway) {
  Synthetic s;
  s.stream = random_stream(8u << 20);
  const fs::path parent = put("parent.sav", s.bytes());
  const fs::path fifo = dir_.path() / "resume.save";
  {
    CloneSaveStream never{parent, clone_identity(1), fifo};  // a restore that failed before opening it
    EXPECT_EQ(never.stop(), "");
    EXPECT_EQ(never.written(), 0u);
  }
  EXPECT_FALSE(fs::exists(fifo));
  {
    CloneSaveStream stream{parent, clone_identity(1), fifo};
    const std::string head = read_fifo(fifo, 100000);  // then the reader closes: EPIPE, no SIGPIPE death
    EXPECT_EQ(head.size(), 100000u);
    for (int i = 0; i < 500 && !stream.finished(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds{10});
    EXPECT_TRUE(stream.finished());
    const std::string why = stream.stop();
    EXPECT_NE(why.find("stopped reading"), std::string::npos) << why;
    EXPECT_LT(stream.written(), 8u << 20);
  }
  EXPECT_FALSE(fs::exists(fifo));
}

TEST_F(SaveFileTest, AStreamRefusesATakenNameAndABadParent) {
  Synthetic s;
  s.stream = random_stream(1u << 20);
  const fs::path parent = put("parent.sav", s.bytes());
  const fs::path taken = put("taken", "mine");
  try {
    CloneSaveStream stream{parent, clone_identity(1), taken};
    ADD_FAILURE() << "took an existing name";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kAlreadyExists) << e.what();
  }
  EXPECT_EQ(testing::read_text_file(taken), "mine");
  Synthetic bad = s;
  bad.magic = "NotASaveFile1234";
  const fs::path broken = put("broken.sav", bad.bytes());
  EXPECT_THROW(CloneSaveStream(broken, clone_identity(1), dir_.path() / "x.save"), Error);
  EXPECT_FALSE(fs::exists(dir_.path() / "x.save"));
}

}  // namespace
}  // namespace vigo::scheduler
