// SPDX-License-Identifier: Apache-2.0
// read_text_file for test fixtures reading logs, /proc entries and status
// files: the one in common/file_util.h (the whole of a small file as a
// string, empty if it cannot be read), under the name the tests use.
#pragma once

#include "vigo/common/file_util.h"

namespace vigo::testing {

using vigo::read_text_file;

}  // namespace vigo::testing
