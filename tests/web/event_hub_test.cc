// SPDX-License-Identifier: Apache-2.0
// EventHub's log without a database: numbering, who sees what, and a
// reader that fell behind the log's capacity told to resync.
#include "vigo/web/event_hub.h"

#include <gtest/gtest.h>

namespace vigo::web {
namespace {

void add(EventHub& hub, std::int64_t owner, std::int64_t id, const std::string& state) {
  hub.publish("workspace", {{"id", id}, {"owner_id", owner}, {"state", state}});
}

TEST(EventHub, ReadersSeeTheirOwnEventsInOrderAndAdminsAll) {
  EventHub hub{"postgresql:///never-connected", 16};
  EXPECT_EQ(hub.last(), 0u);
  add(hub, 1, 10, "pending");
  add(hub, 2, 20, "pending");
  add(hub, 1, 10, "running");
  std::uint64_t next = 0;
  auto mine = hub.since(0, 1, false, 100, next);
  ASSERT_EQ(mine.size(), 2u);
  EXPECT_EQ(mine[0].seq, 1u);
  EXPECT_EQ(mine[1].seq, 3u);
  EXPECT_EQ(mine[1].data["state"], "running");
  EXPECT_FALSE(mine[0].data.contains("owner_id"));
  EXPECT_EQ(next, 3u);
  EXPECT_TRUE(hub.since(next, 1, false, 100, next).empty());
  EXPECT_EQ(hub.since(0, 99, true, 100, next).size(), 3u);
  // At most `max` at a time; next says where to go on.
  auto first = hub.since(0, 0, true, 2, next);
  EXPECT_EQ(first.size(), 2u);
  EXPECT_EQ(next, 2u);
  // A number from another life of vigod (beyond the newest): from now on.
  EXPECT_TRUE(hub.since(1000, 1, false, 100, next).empty());
  EXPECT_EQ(next, 3u);
}

TEST(EventHub, AReaderThatFellBehindIsToldToResync) {
  EventHub hub{"postgresql:///never-connected", 4};
  for (int i = 0; i < 10; ++i) add(hub, 1, i, "running");
  std::uint64_t next = 0;
  auto events = hub.since(2, 1, false, 100, next);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.front().kind, "resync");
  EXPECT_EQ(events.size(), 5u);  // the resync and the 4 the log still holds
  EXPECT_EQ(events[1].seq, 7u);
  EXPECT_EQ(next, 10u);
}

TEST(EventHub, ResyncEventsReachEveryone) {
  EventHub hub{"postgresql:///never-connected", 16};
  hub.publish("resync", {{"reason", "test"}});
  std::uint64_t next = 0;
  const auto events = hub.since(0, 5, false, 100, next);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, "resync");
}

}  // namespace
}  // namespace vigo::web
