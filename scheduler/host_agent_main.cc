// SPDX-License-Identifier: Apache-2.0
// vigo-host: the host agent (vigo/scheduler/host_agent.h), run by vigod
// through ssh on the hosts it drives remotely.
#include <string>
#include <vector>

#include "vigo/scheduler/host_agent.h"

int main(int argc, char** argv) {
  return vigo::scheduler::run_host_agent(std::vector<std::string>(argv + 1, argv + argc));
}
